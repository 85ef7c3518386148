"""Every bad flag of the KWS recipes ends in one line and exit status 2, before training.

The recipes share absl's global flags, so each recipe's cases run in one
child process (a few seconds each), which calls the recipe's `main` once per
case with the flags overridden in-process (`flagsaver`). Training is
replaced by a sentinel: a case that would train fails the test. The
exit-2 path through the real command line is covered by test_recipes.py.
A case that passes every check reaches the sentinel and fails its test.
"""

import json
import math
import os
import subprocess
import sys
import textwrap

from .conftest import recipe_path

# Runs in the child: argv[1] = recipe module, argv[2] = JSON
# {"base": [...argv], "cases": [{name: value}, ...]}; prints one JSON result per case.
DRIVER = textwrap.dedent(
    """
    import contextlib, importlib, io, json, sys
    from absl.testing import flagsaver

    module_name, spec = sys.argv[1], json.loads(sys.argv[2])
    recipe = importlib.import_module(module_name)
    flags = recipe.FLAGS
    flags([module_name, *spec["base"]])

    class WouldTrain(Exception):
        pass

    def refuse(*args, **kwargs):
        raise WouldTrain()

    from swr_keras.kws import job as job_lib
    import swr_keras.kws.tuning as tuning
    import keras
    job_lib.Job.train_shared = job_lib.Job.train_variant = refuse
    tuning.LambdaTuner.search = refuse
    keras.Model.fit = refuse

    results = []
    for case in spec["cases"]:
        stderr = io.StringIO()
        outcome = "returned"
        with flagsaver.flagsaver(**case), contextlib.redirect_stderr(stderr):
            try:
                recipe.main([module_name])
            except SystemExit as stop:
                outcome = stop.code
            except WouldTrain:
                outcome = "would train"
        results.append({"case": case, "exit": outcome, "stderr": stderr.getvalue()})
    print("RESULTS" + json.dumps(results))
    """
)


def run_cases(recipe, base, cases):
    """`[(exit status, stderr lines)]` of `recipe`'s main under each case's flags."""
    spec = json.dumps({"base": base, "cases": [case for case, _ in cases]})
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, f"recipes.{recipe}", spec],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=recipe_path(".."),
        # --distribute=multi_worker must find no TF_CONFIG (a case checks the message).
        env={key: value for key, value in os.environ.items() if key != "TF_CONFIG"},
    )
    marker = [line for line in result.stdout.splitlines() if line.startswith("RESULTS")]
    assert marker, result.stderr[-3000:]
    return json.loads(marker[0][len("RESULTS") :])


def assert_one_line_exit_2(program, cases, results):
    for (case, message), result in zip(cases, results):
        lines = result["stderr"].strip().splitlines()
        assert result["exit"] == 2, (case, result)
        assert len(lines) == 1, (case, lines)
        assert lines[0].startswith(f"{program}: error: "), (case, lines)
        assert message in lines[0], (case, lines[0])


NAN = math.nan


def bank_of_another_backbone(tmp_path):
    """A task bank (one valid task) whose backbone is not `tiny_pretrained`."""
    from swr_keras.bank import TaskBank
    from tests.bank.conftest import add_tasks, build_backbone, make_swr_task

    other = build_backbone(4)
    other.save(str(tmp_path / "other.keras"))
    classes = ["_silence_", "_unknown_", "yes", "no"]
    stored, _ = make_swr_task(other, classes, seed=5)
    bank = TaskBank(str(tmp_path / "other_bank"))
    add_tasks(bank, str(tmp_path / "other.keras"), other, {"stranger": (classes, stored, None)})
    return bank.root


def test_kws_bad_flags(kws_data_dir, tiny_pretrained, tmp_path):
    not_keras = tmp_path / "model.keras"
    not_keras.write_text("not a model")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    other_bank = bank_of_another_backbone(tmp_path)
    cases = [
        ({"learning_rate": 0.0}, "--learning_rate must be > 0. Received: 0.0"),
        ({"learning_rate": -1e-3}, "--learning_rate must be > 0. Received: -0.001"),
        ({"learning_rate": NAN}, "--learning_rate must be > 0. Received: nan"),
        ({"policy_learning_rate": 0.0}, "--policy_learning_rate must be > 0"),
        ({"policy_learning_rate": NAN}, "--policy_learning_rate must be > 0. Received: nan"),
        ({"temperature_start": 0.0}, "--temperature_start must be > 0"),
        ({"temperature_end": -0.5}, "--temperature_end must be > 0"),
        ({"temperature_end": NAN}, "--temperature_end must be > 0. Received: nan"),
        ({"policy_loss_weight": -1.0}, "--policy_loss_weight must be >= 0. Received: -1.0"),
        ({"policy_loss_weight": NAN}, "--policy_loss_weight must be >= 0. Received: nan"),
        ({"tau": 0.1}, "--tau must be at least 0.125. Received: 0.1"),
        ({"pretrained": ""}, "--pretrained is required with --data_dir, --backbone or --tau"),
        (
            {"pretrained": "", "data_dir": "", "tau": 1.0},
            "--pretrained is required with --data_dir",
        ),
        (
            {"pretrained": "", "data_dir": "", "tau": 8.0, "backbone": "res15"},
            "--pretrained is required with --data_dir",
        ),
        ({"target_cost": []}, "--target_cost needs at least one value in [0, 1]"),
        ({"target_cost": ["nan"]}, "--target_cost must be in [0, 1]. Received: nan"),
        (
            {"target_cost": ["0.1", "abc"]},
            "--target_cost must be numbers in [0, 1]. Received: 'abc'",
        ),
        ({"task": "german"}, "--task=german is unknown. Choose one of: gsc2, mc_kws, folder."),
        (
            {"backbone": "resnet50"},
            "--backbone=resnet50 is unknown. Choose one of: bc_resnet, res15.",
        ),
        ({"data_dir": "/no/such/kws"}, "--data_dir=/no/such/kws does not exist."),
        ({"tau": 2.0}, "is not a BC-ResNet-2"),
        ({"supernet_epochs": 0}, "--supernet_epochs must be a positive integer"),
        ({"supernet_epochs": -1}, "--supernet_epochs must be a positive integer"),
        ({"policy_epochs": 0}, "--policy_epochs must be a positive integer"),
        ({"reparam_epochs": 0}, "--reparam_epochs must be a positive integer"),
        ({"batch_size": 0}, "--batch_size must be a positive integer"),
        ({"pretrained": str(tmp_path / "missing.keras")}, "does not exist"),
        ({"pretrained": str(not_keras)}, f"--pretrained={not_keras} is not a Keras model file"),
        (
            {"batch_size": 10_000},
            "The training split has fewer examples than one batch (10000). Lower --batch_size.",
        ),
        (
            {"export_dir": f"{blocker}/exports"},
            f"--export_dir={blocker}/exports cannot be created",
        ),
        ({"method": "lora_typo"}, "--method=lora_typo is unknown"),
        ({"cost_weighting": "flat"}, "--cost_weighting must be one of parameters, equal."),
        (
            {"supernet": False, "supernet_weight": True},
            "which --nosupernet does not train. Received: supernet=False",
        ),
        (
            {"method": "finetune_all", "cost_weighting": "equal"},
            "--cost_weighting is an ablation of swr and not_staged, not of --method=finetune_all",
        ),
        ({"method": "not_staged", "supernet": False}, "--supernet is an ablation of swr, not of"),
        ({"distribute": "bogus"}, "--distribute must be one of one_device, mirrored, multi_worker"),
        ({"distribute": "mirrored:/gpu:9"}, "names device '/gpu:9', which this machine does not"),
        ({"distribute": "multi_worker"}, "--distribute=multi_worker needs the TF_CONFIG"),
        ({"bank": other_bank}, f"The bank {other_bank} holds another backbone than --pretrained"),
    ]
    base = [
        f"--data_dir={kws_data_dir}",
        f"--pretrained={tiny_pretrained}",
        "--tau=1",
        f"--output_dir={tmp_path / 'out'}",
        f"--export_dir={tmp_path / 'exports'}",
    ]
    assert_one_line_exit_2("kws.py", cases, run_cases("kws", base, cases))
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_reproduce_bad_flags(kws_data_dir, tiny_pretrained, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    readme = tmp_path / "README.md"
    readme.write_text("<!-- table1-vs-paper:begin -->\n<!-- table1-vs-paper:end -->\n")
    cases = [
        ({"table": ["3"]}, "--table=3 is unknown. Choose from: 1, 2."),
        ({"table": []}, "Choose what to reproduce: --table=1, --table=2 and/or --figure=2."),
        ({"figure": ["2a"]}, "--figure=2a is unknown. Choose from: 2."),
        ({"tasks": ["folder"]}, "--tasks=folder is unknown. Choose from: gsc2, mc_kws."),
        ({"seeds": ["a"]}, "--seeds must be integers >= 0. Received: 'a'"),
        ({"seeds": ["-1"]}, "--seeds must be integers >= 0. Received: '-1'"),
        ({"target_costs": ["0"]}, "--target_costs must be numbers in (0, 1]. Received: 0"),
        ({"target_costs": ["2"]}, "--target_cost must be in [0, 1]. Received: 2"),
        ({"methods": ["nope"]}, "--methods=nope is not a row of the selected tables/figures."),
        ({"methods": ["not_staged"]}, "--methods=not_staged is not a row"),
        ({"cost_weighting": "equal"}, "--cost_weighting is set by the rows of Table 2"),
        ({"supernet": False}, "--supernet is set by the rows of Table 2"),
        ({"task": "mc_kws"}, "--task is kws.py's; use --tasks. Received: --task=mc_kws"),
        ({"method": "taps"}, "--method is kws.py's; use --methods. Received: --method=taps"),
        ({"learning_rate": 0.0}, "--learning_rate must be > 0. Received: 0.0"),
        ({"lora_budget": 0.0}, "--lora_budget must be in (0, 1]"),
        ({"results_dir": f"{blocker}/r"}, f"--results_dir={blocker}/r cannot be created"),
        ({"readme": str(blocker)}, f"{blocker} needs one '<!-- table1-vs-paper:begin -->' line"),
        # BC-ResNet-1 is not in the paper's Table 1.
        ({"readme": str(readme)}, "--readme writes Table 1 beside the paper's: add --table=1"),
    ]
    base = [
        "--table=1",
        f"--data_dir={kws_data_dir}",
        f"--pretrained={tiny_pretrained}",
        "--tau=1",
        f"--results_dir={tmp_path / 'results'}",
        f"--work_dir={tmp_path / 'work'}",
    ]
    assert_one_line_exit_2("reproduce.py", cases, run_cases("reproduce", base, cases))
    assert not (tmp_path / "results" / "cells").exists()


def test_tune_lambda_bad_flags(kws_data_dir, tiny_pretrained, tmp_path):
    cases = [
        ({"target_cost": "abc"}, "--target_cost must be numbers in [0, 1]. Received: 'abc'"),
        ({"target_cost": "-0.1"}, "--target_cost must be in [0, 1]. Received: -0.1"),
        ({"tolerance": 1.5}, "--tolerance must be in [0, 1]. Received: 1.5"),
        ({"oracle": "grid"}, "--oracle=grid is unknown. Choose random or bayesian."),
        ({"max_trials": 0}, "--max_trials must be a positive integer"),
        ({"min_lambda": 2.0, "max_lambda": 1.0}, "Need 0 < --min_lambda < --max_lambda"),
        ({"learning_rate": NAN}, "--learning_rate must be > 0. Received: nan"),
        ({"reparam_epochs": 0}, "--reparam_epochs must be a positive integer"),
        ({"tau": 0.1}, "--tau must be at least 0.125"),
        ({"pretrained": ""}, "--pretrained is required with --data_dir"),
    ]
    base = [
        f"--data_dir={kws_data_dir}",
        f"--pretrained={tiny_pretrained}",
        "--tau=1",
        f"--directory={tmp_path / 'search'}",
    ]
    assert_one_line_exit_2("tune_lambda.py", cases, run_cases("tune_lambda", base, cases))


def test_pretrain_bad_flags(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cases = [
        ({"epochs": 0}, "--epochs must be a positive integer"),
        ({"warmup_epochs": 3, "epochs": 3}, "--warmup_epochs must be in [0, --epochs)"),
        ({"warmup_epochs": -1}, "--warmup_epochs must be in [0, --epochs). Received: -1"),
        ({"batch_size": 0}, "--batch_size must be a positive integer"),
        ({"learning_rate": 0.0}, "--learning_rate must be > 0. Received: 0.0"),
        ({"learning_rate": NAN}, "--learning_rate must be > 0. Received: nan"),
        ({"weight_decay": -1e-3}, "--weight_decay must be >= 0. Received: -0.001"),
        ({"weight_decay": NAN}, "--weight_decay must be >= 0. Received: nan"),
        ({"tau": 0.1}, "--tau must be at least 0.125. Received: 0.1"),
        ({"output_dir": f"{blocker}/m"}, f"--output_dir={blocker}/m cannot be created"),
        ({"work_dir": f"{blocker}/w"}, f"--work_dir={blocker}/w cannot be created"),
        ({"data_dir": str(tmp_path / "none")}, "does not exist"),
    ]
    base = [f"--output_dir={tmp_path / 'm'}", f"--work_dir={tmp_path / 'w'}"]
    assert_one_line_exit_2("pretrain_kws.py", cases, run_cases("pretrain_kws", base, cases))
