"""Image transfer (the paper's ImageNet-to-Sketch, and its synthetic stand-in).

`datasets` reads the five ImageNet-to-Sketch sets offline and the synthetic
domains; `data` turns a task into a job's batches; `backbones` loads the
shipped small ResNet or ResNet-50 from ImageNet weights; `serving_export`
and `run_report` write what a job leaves behind. The recipe is
`recipes/sketch.py`.
"""
