"""`edgecompress analyze`: the intrinsic-dimension profile of a model, on its own."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from edgecompress.cli.console import say, setup_logging, stdout_console
from edgecompress.cli.options import choice, plain

if TYPE_CHECKING:  # what mypy sees; typer sees the choices
    MethodChoice = str
    ScalingChoice = str
else:
    from edgecompress.analysis.significance import ESTIMATORS
    from edgecompress.data.dataset import SCALINGS

    MethodChoice = choice("Method", ESTIMATORS)
    ScalingChoice = choice("Scaling", SCALINGS)


def analyze(
    model: Path = typer.Argument(..., metavar="MODEL", help="Keras model file (.h5 or .keras)."),
    data: str = typer.Option(
        ..., "--data", "-d", help="A folder of class folders, an .npz file, or sklearn:digits.", show_default=False
    ),
    classes: Optional[str] = typer.Option(
        None, help="Comma-separated class subset, e.g. cat,dog.", show_default="every class"
    ),
    delta: float = typer.Option(20.0, help="A layer is significant when |ID(l) - ID(l-1)| exceeds this."),
    method: MethodChoice = typer.Option(
        "twonn", help="twonn (Facco et al. 2017) or pca (components for 99% of variance)."
    ),
    samples: int = typer.Option(2000, help="Samples drawn from the training split (reproducible with --seed)."),
    subsamples: int = typer.Option(5, help="Random half-size subsamples for the error bars."),
    discard: float = typer.Option(0.1, help="TwoNN: fraction of the largest r2/r1 ratios left out of the fit."),
    seed: int = typer.Option(0, help="Seed of the sample drawn from the training split."),
    scaling: Optional[ScalingChoice] = typer.Option(
        None, help="Input scaling the model expects.", show_default="the model's, else 0-1"
    ),
    resize: bool = typer.Option(False, "--resize", help="Resize images to the model's input size."),
    output: Path = typer.Option(
        Path("analysis"), "--output", "-o", help="Folder for significance.json and id_profile.png."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and TensorFlow's own messages."),
) -> None:
    """Intrinsic dimension of every Conv/Dense layer's output, and which layers are significant."""
    setup_logging(debug)
    method, scaling = plain({"method": method, "scaling": scaling}).values()
    from edgecompress._tf import quiet_native_output
    from edgecompress.analysis import analyze_model, render_table
    from edgecompress.data import load_dataset
    from edgecompress.model_io import load_model

    loaded = load_model(model, for_export=False)  # analysis exports nothing: a recurrent model is fine here
    dataset = load_dataset(
        data,
        input_shape=loaded.input_shape,
        scaling=scaling or loaded.scaling or "0-1",
        seed=seed,
        resize=resize,
        classes=split_classes(classes),
    )
    say(
        f"{method} on {min(samples, len(dataset.x_train))} samples of {dataset.source}, {len(loaded.model.layers)} layers"
    )
    with quiet_native_output():
        profile = analyze_model(
            loaded.model,
            dataset.x_train,
            method=method,
            delta=delta,
            n_samples=samples,
            seed=seed,
            n_subsamples=subsamples,
            discard_fraction=discard,
            progress=lambda name, done, total: say(f"  {done}/{total} {name}"),
        )
    out = stdout_console()
    out.print(render_table(profile))
    paths = profile.write(output)
    out.print(f"Wrote {paths['json']} and {paths['plot']}")


def split_classes(classes: str | None) -> list[str] | None:
    """'cat, dog' -> ['cat', 'dog']; None or an empty string -> None (every class)."""
    return [c.strip() for c in classes.split(",") if c.strip()] or None if classes else None
