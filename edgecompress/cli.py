"""The `edgecompress` command. Each command is a thin shell over the Python API of the same name.

Errors a user caused (EdgeCompressError) are printed as one paragraph and a non-zero exit
code; a traceback is shown only with --debug, or for genuine bugs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from edgecompress._tf import TerminalStream
from edgecompress.errors import EdgeCompressError

app = typer.Typer(
    help="Compress a trained Keras model for an edge device, run it there, and report measured latency, size, memory and accuracy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Our messages stay audible while TensorFlow's native chatter is silenced (see _tf.TerminalStream).
console = Console(file=TerminalStream(2))
out = Console(file=TerminalStream(1), width=None if sys.stdout.isatty() else 150)  # piped: don't squeeze tables to 80 columns


def _mount_subcommands() -> None:
    from edgecompress.cli_profiles import app as profiles_app

    app.add_typer(profiles_app, name="profiles", help="List and inspect device profiles.")
    from edgecompress.cli_micro import app as micro_app

    app.add_typer(micro_app, name="micro", help="Prepare TFLM sources and check the firmware toolchain and emulator.")
    from edgecompress.cli_report import register

    register(app)  # `report RUN_DIR` and `compare RUN_DIR...`


def _setup_logging(debug: bool) -> None:
    """Console shows warnings (everything with --debug); each run's deploy.log gets INFO and up."""
    if debug:
        os.environ["EDGECOMPRESS_DEBUG"] = "1"
    handler = logging.StreamHandler()
    handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.basicConfig(handlers=[handler], level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("edgecompress").setLevel(logging.DEBUG if debug else logging.INFO)


def _say(message: str) -> None:
    console.print(f"[cyan]•[/cyan] {message}", highlight=False)


@app.command()
def deploy(
    model: Optional[Path] = typer.Argument(None, help="Keras model file (.h5 or .keras). Not needed with --resume."),
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="Device profile name (see `edgecompress profiles list`) or path to your own profile file."),
    data: str = typer.Option("sklearn:digits", "--data", "-d", help="Class-folder directory, .npz file, or sklearn:digits."),
    classes: Optional[str] = typer.Option(None, help="Comma-separated class subset in the model's output order, e.g. cat,dog."),
    target: list[str] = typer.Option(["local"], "--target", "-t", help="local, ssh://user@host[:port], a target name/file, or qemu[:BOARD] (microcontroller firmware on an emulated board). Repeat for a fleet."),
    output: Path = typer.Option(Path("runs"), "--output", "-o", help="Folder that receives one sub-folder per run."),
    seed: int = typer.Option(0, help="Seed for data splits and calibration sampling."),
    scaling: Optional[str] = typer.Option(None, help="Input scaling the model expects: 0-1, 0-255 or -1-1 (default: inferred from the model's first layers)."),
    resize: bool = typer.Option(False, "--resize", help="Resize images to the model's input size instead of refusing mismatched data."),
    max_eval: int = typer.Option(2000, help="Evaluation images measured on the device (stratified subset of the test split)."),
    warmup: int = typer.Option(20, help="Warm-up inferences before timing."),
    runs: int = typer.Option(100, help="Timed inferences."),
    threads: Optional[int] = typer.Option(None, help="Interpreter threads on the device (default: the runtime's choice)."),
    recipe: Optional[str] = typer.Option(None, help="Use a named recipe instead of the profile's plan: ptq-int8, ptq-fp16, ptq-dynamic, ptq-int16x8, qat, clustering-ptq, pruning-ptq, cqat, twonn-cqat, twonn-mixed."),
    epochs: Optional[int] = typer.Option(None, help="Fine-tuning epochs per compression stage (early stopping may end sooner)."),
    delta: Optional[float] = typer.Option(None, help="Significance threshold on |ID(l) - ID(l-1)| (default: the profile's)."),
    method: str = typer.Option("twonn", help="Intrinsic-dimension estimator: twonn or pca."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the per-layer plan and stop: nothing is trained, written or sent."),
    resume_dir: Optional[Path] = typer.Option(None, "--resume", help="Finish a failed run folder, repeating only what is missing."),
    identity: Optional[Path] = typer.Option(None, help="SSH private key file."),
    known_hosts: Optional[Path] = typer.Option(None, help="known_hosts file to verify boards against (default ~/.ssh/known_hosts)."),
    accept_new_host_key: bool = typer.Option(False, "--accept-new-host-key", help="Trust and record the host key of a board seen for the first time."),
    keep_remote: bool = typer.Option(False, "--keep-remote", help="Keep the run folder on the board."),
    password_env: Optional[str] = typer.Option(None, help="Name of an environment variable holding the SSH password."),
    ssh_retries: Optional[int] = typer.Option(None, "--ssh-retries", help="Retries (with back-off) when a connection drops (default 2)."),
    connect_timeout: Optional[float] = typer.Option(None, help="Seconds to wait for a board to answer (default 10)."),
    remote_python: Optional[str] = typer.Option(None, help="Python on the board (default: python3, or the target file's)."),
    remote_dir: Optional[str] = typer.Option(None, help="Work folder on the board (default ~/.edgecompress)."),
    tflm_dir: Optional[Path] = typer.Option(None, "--tflm-dir", help="Microcontrollers: a tflite-micro tree to build the firmware from (default: $EDGECOMPRESS_TFLM_DIR, then `edgecompress micro setup`'s cache)."),
    kernels: str = typer.Option("cmsis_nn", "--kernels", help="Microcontrollers: TFLM kernels to link, cmsis_nn (optimized) or reference."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final table (and errors)."),
    json_output: bool = typer.Option(False, "--json", help="Print a machine-readable JSON summary on stdout instead of tables."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and TensorFlow's own messages."),
) -> None:
    """Convert MODEL for a device profile, run it on the target, and write a report."""
    _setup_logging(debug)
    from edgecompress import pipeline
    from edgecompress.report import render_summary
    from edgecompress.reporting.progress import Progress

    bars = Progress(quiet=quiet or json_output, console=console)
    feedback = {"progress": bars.say, "task": bars.task, "show": None if (quiet or json_output) else out.print}
    if resume_dir is not None:
        result = pipeline.resume(resume_dir, **feedback)
    else:
        if model is None or profile is None:
            raise EdgeCompressError("deploy needs a MODEL file and --profile.", "Example: edgecompress deploy --profile rpi4 model.h5 --data sklearn:digits")
        ssh_options = {
            "identity": identity,
            "known_hosts": known_hosts,
            "accept_new_host_key": accept_new_host_key,
            "keep_remote": keep_remote,
            "password_env": password_env,
            "retries": ssh_retries,
            "connect_timeout": connect_timeout,
            "remote_python": remote_python,
            "remote_dir": remote_dir,
        }
        result = pipeline.deploy(
            model,
            profile,
            data=data,
            classes=[c.strip() for c in classes.split(",") if c.strip()] if classes else None,
            target=target,
            output=output,
            seed=seed,
            scaling=scaling,
            resize=resize,
            max_eval=max_eval,
            warmup=warmup,
            runs=runs,
            threads=threads,
            recipe=recipe,
            epochs=epochs,
            delta=delta,
            method=method,
            dry_run=dry_run,
            micro={k: v for k, v in {"tflm_dir": tflm_dir, "kernels": kernels}.items() if v is not None},
            **feedback,
            **{k: v for k, v in ssh_options.items() if v not in (None, False)},
        )
    if json_output:
        from edgecompress.reporting import to_json_summary

        summary = {"plan": result.report["plan"]} if result.run_dir is None else to_json_summary(result.report)
        sys.stdout.write(json.dumps({"run_dir": str(result.run_dir) if result.run_dir else None, **summary}, default=str) + "\n")
        return
    if result.run_dir is None:
        out.print("Dry run: nothing was trained, written or sent.")
        return
    out.print(render_summary(result.report))
    out.print(f"Run folder: {result.run_dir}")


@app.command()
def analyze(
    model: Path = typer.Argument(..., help="Keras model file (.h5 or .keras)."),
    data: str = typer.Option("sklearn:digits", "--data", "-d", help="Class-folder directory, .npz file, or sklearn:digits."),
    classes: Optional[str] = typer.Option(None, help="Comma-separated class subset, e.g. cat,dog."),
    delta: float = typer.Option(20.0, help="A layer is significant when |ID(l) - ID(l-1)| exceeds this."),
    method: str = typer.Option("twonn", help="twonn (Facco et al. 2017) or pca (components for 99% of variance)."),
    samples: int = typer.Option(2000, help="Samples drawn from the training split (reproducible with --seed)."),
    subsamples: int = typer.Option(5, help="Random half-size subsamples for the error bars."),
    discard: float = typer.Option(0.1, help="TwoNN: fraction of the largest r2/r1 ratios left out of the fit."),
    seed: int = typer.Option(0),
    scaling: Optional[str] = typer.Option(None, help="Input scaling the model expects: 0-1, 0-255 or -1-1 (default: inferred)."),
    resize: bool = typer.Option(False, "--resize"),
    output: Path = typer.Option(Path("analysis"), "--output", "-o", help="Folder for significance.json and id_profile.png."),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Intrinsic dimension of every Conv/Dense layer's output, and which layers are significant."""
    _setup_logging(debug)
    from edgecompress._tf import quiet_native_output
    from edgecompress.analysis import analyze_model, render_table
    from edgecompress.data import load_dataset
    from edgecompress.model_io import load_model

    loaded = load_model(model)
    dataset = load_dataset(
        data, input_shape=loaded.input_shape, scaling=scaling or loaded.scaling, seed=seed, resize=resize,
        classes=[c.strip() for c in classes.split(",") if c.strip()] if classes else None,
    )
    _say(f"{method} on {min(samples, len(dataset.x_train))} samples of {dataset.source}, {len(loaded.model.layers)} layers")
    with quiet_native_output():
        profile = analyze_model(
            loaded.model, dataset.x_train, method=method, delta=delta, n_samples=samples, seed=seed,
            n_subsamples=subsamples, discard_fraction=discard,
            progress=lambda name, done, total: _say(f"  {done}/{total} {name}"),
        )
    out.print(render_table(profile))
    paths = profile.write(output)
    out.print(f"Wrote {paths['json']} and {paths['plot']}")


@app.command("example-model")
def example_model(
    output: Path = typer.Argument(Path("digits_cnn.h5"), help="Where to save the trained .h5 model."),
    epochs: int = typer.Option(15, help="Training epochs (early stopping may end sooner)."),
    seed: int = typer.Option(0),
) -> None:
    """Train a small CNN on scikit-learn's digits (nothing downloaded) to try deploy with."""
    _setup_logging(False)
    from edgecompress.example_model import train_example_model

    _say(f"Training the example CNN on sklearn:digits ({epochs} epochs max, 2 cores: under a minute)")
    figures = train_example_model(output, epochs=epochs, seed=seed)
    out.print(f"Saved {output}: {int(figures['parameters']):,} parameters, test accuracy {figures['test_accuracy']:.2%}")


@app.command()
def quickstart(
    profile: str = typer.Option("rpi4", "--profile", "-p", help="Device profile to deploy for."),
    output: Path = typer.Option(Path("runs"), "--output", "-o"),
    workdir: Path = typer.Option(Path("."), help="Where the example model is written."),
) -> None:
    """The whole main job on a fresh machine: train the example model, then deploy it locally."""
    _setup_logging(False)
    from edgecompress import pipeline
    from edgecompress.example_model import train_example_model
    from edgecompress.report import render_summary

    model_path = workdir / "digits_cnn.h5"
    _say(f"1/2 edgecompress example-model {model_path}")
    figures = train_example_model(model_path)
    _say(f"    test accuracy {figures['test_accuracy']:.2%}")
    _say(f"2/2 edgecompress deploy --profile {profile} {model_path} --data sklearn:digits --target local")
    result = pipeline.deploy(model_path, profile, data="sklearn:digits", target="local", output=output, progress=_say, show=out.print)
    out.print(render_summary(result.report))
    out.print(f"Run folder: {result.run_dir}")


@app.command()
def version() -> None:
    """Print the edgecompress version."""
    import edgecompress

    out.print(edgecompress.__version__)


def main(argv: list[str] | None = None) -> int:
    """Run the app and turn user errors into a clear paragraph; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    _mount_subcommands()
    try:
        app(args=argv, prog_name="edgecompress")  # standalone: usage errors print and exit here
        return 0
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except EdgeCompressError as error:
        if debug:
            console.print_exception()
        console.print(f"[bold red]Error:[/bold red] {error.problem}", highlight=False)
        if error.fix:
            console.print(f"[bold]What to do:[/bold] {error.fix}", highlight=False)
        return error.exit_code
    except KeyboardInterrupt:
        console.print("[bold red]Interrupted.[/bold red]")
        return 130


def entry_point() -> None:
    """What the `edgecompress` script calls."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry_point()
