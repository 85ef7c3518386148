"""Keyword spotting with SWR: tasks, pre-training, the SWR job, export."""
