"""`edgecompress analyze`: the intrinsic-dimension profile of a model, on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from edgecompress.cli.console import say, setup_logging, stdout_console


def analyze(
    model: Path = typer.Argument(..., help="Keras model file (.h5 or .keras)."),
    data: str = typer.Option(
        "sklearn:digits", "--data", "-d", help="Class-folder directory, .npz file, or sklearn:digits."
    ),
    classes: Optional[str] = typer.Option(None, help="Comma-separated class subset, e.g. cat,dog."),
    delta: float = typer.Option(20.0, help="A layer is significant when |ID(l) - ID(l-1)| exceeds this."),
    method: str = typer.Option("twonn", help="twonn (Facco et al. 2017) or pca (components for 99% of variance)."),
    samples: int = typer.Option(2000, help="Samples drawn from the training split (reproducible with --seed)."),
    subsamples: int = typer.Option(5, help="Random half-size subsamples for the error bars."),
    discard: float = typer.Option(0.1, help="TwoNN: fraction of the largest r2/r1 ratios left out of the fit."),
    seed: int = typer.Option(0),
    scaling: Optional[str] = typer.Option(
        None,
        help="Input scaling the model expects: 0-1, 0-255 or -1-1 for pixels, none for values as stored "
        "(default: the model's, else 0-1 for pixels and none for other data).",
    ),
    resize: bool = typer.Option(False, "--resize"),
    output: Path = typer.Option(
        Path("analysis"), "--output", "-o", help="Folder for significance.json and id_profile.png."
    ),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Intrinsic dimension of every Conv/Dense layer's output, and which layers are significant."""
    setup_logging(debug)
    from edgecompress._tf import quiet_native_output
    from edgecompress.analysis import analyze_model, render_table
    from edgecompress.model_io import load_model

    loaded = load_model(model, for_export=False)  # analysis exports nothing: a recurrent model is fine here
    dataset = _samples(loaded, data, scaling, seed, resize, split_classes(classes))
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


def _samples(loaded: Any, data: str, scaling: str | None, seed: int, resize: bool, wanted: list[str] | None) -> Any:
    """The data for the analysis: activations need no labels, so any data the model takes will do."""
    from edgecompress.data import load_dataset
    from edgecompress.data.scaling import rescaled

    dataset = load_dataset(
        data,
        model=loaded.facts,
        task=None if wanted else "fidelity",
        scaling=scaling,
        seed=seed,
        resize=resize,
        classes=wanted,
    )
    if scaling is None and loaded.scaling is not None and dataset.pixel_factor is not None:
        dataset = rescaled(dataset, loaded.scaling)
    return dataset


def split_classes(classes: str | None) -> list[str] | None:
    """'cat, dog' -> ['cat', 'dog']; None or an empty string -> None (every class)."""
    return [c.strip() for c in classes.split(",") if c.strip()] or None if classes else None
