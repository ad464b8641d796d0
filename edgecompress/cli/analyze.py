"""`edgecompress analyze`: the intrinsic-dimension profile of a model, on its own."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from edgecompress.cli.console import say, setup_logging, stdout_console
from edgecompress.cli.options import choice, plain

if TYPE_CHECKING:  # what mypy sees; typer sees the choices
    MethodChoice = str
    ScalingChoice = str
else:
    from edgecompress.analysis.significance import ESTIMATORS
    from edgecompress.data.dataset import SCALING_NAMES

    MethodChoice = choice("Method", ESTIMATORS)
    ScalingChoice = choice("Scaling", SCALING_NAMES)


ModelArg = Annotated[Path, typer.Argument(metavar="MODEL", help="Keras model file (.h5 or .keras).")]
DataOpt = Annotated[
    str,
    typer.Option(
        "--data",
        "-d",
        help="Any data the model takes (labels are not needed): class folders, a folder of images, an .npz, a .npy, "
        "or sklearn:digits / sklearn:diabetes.",
        show_default=False,
    ),
]
ClassesOpt = Annotated[
    Optional[str], typer.Option(help="Comma-separated class subset, e.g. cat,dog.", show_default="every class")
]
DeltaOpt = Annotated[float, typer.Option(help="A layer is significant when |ID(l) - ID(l-1)| exceeds this.")]
MethodOpt = Annotated[
    MethodChoice, typer.Option(help="twonn (Facco et al. 2017) or pca (components for 99% of variance).")
]
SamplesOpt = Annotated[int, typer.Option(help="Samples drawn from the training split (reproducible with --seed).")]
SubsamplesOpt = Annotated[int, typer.Option(help="Random half-size subsamples for the error bars.")]
DiscardOpt = Annotated[float, typer.Option(help="TwoNN: fraction of the largest r2/r1 ratios left out of the fit.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the sample drawn from the training split.")]
ScalingOpt = Annotated[
    Optional[ScalingChoice],
    typer.Option(
        help="Input scaling the model expects: 0-1, 0-255 or -1-1 for pixels; none for values given as stored.",
        show_default="the model's, else 0-1 for pixels and none for other data",
    ),
]
ResizeOpt = Annotated[bool, typer.Option("--resize", help="Resize images to the model's input size.")]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Folder for significance.json and id_profile.png.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks and TensorFlow's own messages.")]


def analyze(
    model: ModelArg,
    data: DataOpt,
    classes: ClassesOpt = None,
    delta: DeltaOpt = 20.0,
    method: MethodOpt = "twonn",
    samples: SamplesOpt = 2000,
    subsamples: SubsamplesOpt = 5,
    discard: DiscardOpt = 0.1,
    seed: SeedOpt = 0,
    scaling: ScalingOpt = None,
    resize: ResizeOpt = False,
    output: OutputOpt = Path("analysis"),
    debug: DebugOpt = False,
) -> None:
    """Intrinsic dimension of every Conv/Dense layer's output, and which layers are significant."""
    setup_logging(debug)
    method, scaling = plain({"method": method, "scaling": scaling}).values()
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
