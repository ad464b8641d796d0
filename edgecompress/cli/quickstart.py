"""`edgecompress example-model` and `edgecompress quickstart`: the main job on a fresh machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecompress.cli import options as opt
from edgecompress.cli.console import console, say, setup_logging, stdout_console

#: what quickstart deploys: the README's second step, spelled out (no option has a silent data default)
QUICKSTART_DATA = "sklearn:digits"
QUICKSTART_TARGET = "local"

ExampleOutput = Annotated[Path, typer.Argument(help="Where to save the trained .h5 model.")]
ExampleEpochs = Annotated[int, typer.Option(help="Training epochs (early stopping may end sooner).")]
ExampleSeed = Annotated[int, typer.Option(help="Seed of the data split, the initial weights and the shuffling.")]
QuickProfile = Annotated[
    str, typer.Option("--profile", "-p", help="Device profile to deploy for.", rich_help_panel=opt.MODEL_AND_DATA)
]
QuickOutput = Annotated[
    Path, typer.Option("--output", "-o", help="Folder that receives the run folder.", rich_help_panel=opt.OUTPUT)
]
QuickWorkdir = Annotated[
    Path, typer.Option(help="Where the example model is written.", rich_help_panel=opt.MODEL_AND_DATA)
]
QuickSteps = Annotated[
    int | None,
    typer.Option(
        help="Optimizer steps per fine-tuning stage at most.",
        show_default="the profile's, 1000",
        rich_help_panel=opt.COMPRESSION,
    ),
]


def example_model(
    output: ExampleOutput = Path("digits_cnn.h5"),
    epochs: ExampleEpochs = 15,
    seed: ExampleSeed = 0,
    debug: opt.Debug = False,
) -> None:
    """Train a small CNN on scikit-learn's digits (nothing downloaded) to try deploy with."""
    setup_logging(debug)
    from edgecompress.example_model import train_example_model

    say(f"Training the example CNN on {QUICKSTART_DATA} ({epochs} epochs max, 2 cores: under a minute)")
    figures = train_example_model(output, epochs=epochs, seed=seed)
    stdout_console().print(
        f"Saved {output}: {int(figures['parameters']):,} parameters, test accuracy {figures['test_accuracy']:.2%}",
        soft_wrap=not stdout_console().is_terminal,
    )


def quickstart(
    profile: QuickProfile = "rpi4",
    output: QuickOutput = Path("runs"),
    workdir: QuickWorkdir = Path("."),
    epochs: Annotated[
        int, typer.Option(help="Training epochs of the example model.", rich_help_panel=opt.MODEL_AND_DATA)
    ] = 15,
    finetune_steps: QuickSteps = None,
    wide: Annotated[
        bool, typer.Option("--wide", help="Show every column of the results table.", rich_help_panel=opt.OUTPUT)
    ] = False,
    debug: opt.Debug = False,
) -> None:
    """The whole main job on a fresh machine: train the example model, then deploy it locally."""
    setup_logging(debug)
    from edgecompress import pipeline
    from edgecompress.cli.deploy import print_result
    from edgecompress.cli.progress import Progress
    from edgecompress.example_model import train_example_model

    bars = Progress(console=console)
    model_path = workdir / "digits_cnn.h5"
    say(f"1/2 edgecompress example-model {model_path}" + (f" --epochs {epochs}" if epochs != 15 else ""))
    with bars.task("Training the example CNN"):
        figures = train_example_model(model_path, epochs=epochs)
    say(f"    test accuracy {figures['test_accuracy']:.2%}")
    steps = f" --finetune-steps {finetune_steps}" if finetune_steps else ""
    say(
        f"2/2 edgecompress deploy --profile {profile} {model_path} --data {QUICKSTART_DATA} "
        f"--target {QUICKSTART_TARGET}{steps}"
    )
    result = pipeline.deploy(
        model_path,
        profile,
        data=QUICKSTART_DATA,
        target=QUICKSTART_TARGET,
        output=output,
        finetune_steps=finetune_steps,
        progress=bars.say,
        task=bars.task,
        show=stdout_console().print,
    )
    print_result(result, wide=wide)
