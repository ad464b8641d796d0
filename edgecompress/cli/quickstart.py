"""`edgecompress example-model` and `edgecompress quickstart`: the main job on a fresh machine."""

from __future__ import annotations

from pathlib import Path

import typer

from edgecompress.cli.console import say, setup_logging, stdout_console


def example_model(
    output: Path = typer.Argument(Path("digits_cnn.h5"), help="Where to save the trained .h5 model."),
    epochs: int = typer.Option(15, help="Training epochs (early stopping may end sooner)."),
    seed: int = typer.Option(0),
) -> None:
    """Train a small CNN on scikit-learn's digits (nothing downloaded) to try deploy with."""
    setup_logging(False)
    from edgecompress.example_model import train_example_model

    say(f"Training the example CNN on sklearn:digits ({epochs} epochs max, 2 cores: under a minute)")
    figures = train_example_model(output, epochs=epochs, seed=seed)
    stdout_console().print(
        f"Saved {output}: {int(figures['parameters']):,} parameters, test accuracy {figures['test_accuracy']:.2%}"
    )


def quickstart(
    profile: str = typer.Option("rpi4", "--profile", "-p", help="Device profile to deploy for."),
    output: Path = typer.Option(Path("runs"), "--output", "-o"),
    workdir: Path = typer.Option(Path("."), help="Where the example model is written."),
) -> None:
    """The whole main job on a fresh machine: train the example model, then deploy it locally."""
    setup_logging(False)
    from edgecompress import pipeline
    from edgecompress.example_model import train_example_model
    from edgecompress.reporting.terminal import render_summary

    out = stdout_console()
    model_path = workdir / "digits_cnn.h5"
    say(f"1/2 edgecompress example-model {model_path}")
    figures = train_example_model(model_path)
    say(f"    test accuracy {figures['test_accuracy']:.2%}")
    say(f"2/2 edgecompress deploy --profile {profile} {model_path} --data sklearn:digits --target local")
    result = pipeline.deploy(
        model_path, profile, data="sklearn:digits", target="local", output=output, progress=say, show=out.print
    )
    out.print(render_summary(result.report))
    out.print(f"Run folder: {result.run_dir}")
