"""What a deploy run depends on: one declaration of every field and its default.

`edgecompress deploy` (the CLI) and `edgecompress.deploy()` (Python) both build a
`DeployRequest`; neither repeats a default. The request is saved as request.json in the run
folder so `deploy --resume` can replay it from any directory: paths are stored absolute and
the model's SHA-256 is recorded, so a model that changed since the run started is noticed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecompress.errors import EdgeCompressError

#: SSH (and other target) options a request may carry; see `edgecompress deploy --help`.
TARGET_OPTIONS = (
    "identity", "known_hosts", "accept_new_host_key", "keep_remote", "password_env",
    "retries", "connect_timeout", "remote_python", "remote_dir", "ssh_config",
)  # fmt: skip
#: target options that name files on this machine, stored absolute
_PATH_TARGET_OPTIONS = ("identity", "known_hosts", "ssh_config")


@dataclass
class DeployRequest:
    """Everything a run depends on; see `edgecompress deploy --help` for each field's meaning."""

    model: str
    profile: str
    data: str = "sklearn:digits"
    classes: list[str] | None = None
    targets: list[str] = field(default_factory=lambda: ["local"])
    output: str = "runs"
    seed: int = 0
    scaling: str | None = None  # None: decided from the model, or from data when the model does not say
    resize: bool = False
    max_eval: int | None = 2000
    warmup: int = 20  # warm-up runs per artifact in all, spread over the rounds
    runs: int = 100  # timed runs per artifact in all, spread over the rounds
    rounds: int = 5  # interleaved timing rounds per board (targets/rounds.py)
    cooldown: float = 0.0  # seconds of rest between timing rounds
    threads: int | None = None
    recipe: str | None = None  # None: the plan the profile implies; else a named recipe (ptq-int8, cqat, ...)
    finetune_steps: int | None = None  # optimizer steps per fine-tuning stage at most (None: the profile's)
    finetune_minutes: float | None = None  # wall-clock budget for all fine-tuning (None: the profile's)
    epochs: int | None = None  # epochs-equivalent per fine-tuning stage at most (None: the default, 10)
    device: str = "auto"  # where fine-tuning runs: auto (a GPU when TensorFlow sees one) | cpu | gpu
    delta: float | None = None  # significance threshold (None: the profile's)
    method: str = "twonn"  # intrinsic-dimension estimator: twonn | pca
    id_samples: int = 2000
    onnx: bool = True
    cache: bool = True  # reuse significance, PTQ and fine-tuned stages across runs (see `edgecompress cache`)
    micro: dict[str, Any] = field(default_factory=dict)  # microcontroller firmware: tflm_dir, kernels
    target_options: dict[str, Any] = field(default_factory=dict)
    acceptance: dict[str, Any] = field(
        default_factory=dict
    )  # rule overrides (profiles.Acceptance fields) on the profile's
    gate: bool = False  # raise errors.GateFailed (exit 10) when no artifact passes the rules
    ship: bool = True  # leave ship/, the bundle of the recommended artifact
    profile_overrides: dict[str, Any] = field(
        default_factory=dict
    )  # {"compression": {"clusters": 8}}: checked by the profile schema
    run_name: str | None = None  # the run folder's name (None: time stamp, model and profile)
    model_sha256: str | None = None  # recorded when the run starts; a resume refuses a changed model

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of field `name`: what the CLI shows and uses when an option is left out."""
        spec = cls.__dataclass_fields__[name]
        if spec.default_factory is not dataclasses.MISSING:
            return spec.default_factory()
        return spec.default

    @classmethod
    def build(cls, model: str | Path, profile: str | Path, **fields: Any) -> DeployRequest:
        """A request from Python-style arguments: `target` may be one spec or a list, and the
        SSH options (identity=..., known_hosts=...) may be given directly."""
        if "target" in fields:
            target = fields.pop("target")
            fields["targets"] = [target] if isinstance(target, (str, Path)) else list(target)
        options = dict(fields.pop("target_options", None) or {})
        options.update({name: fields.pop(name) for name in TARGET_OPTIONS if name in fields})
        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(
                f"deploy() got unknown argument(s) {', '.join(unknown)}; "
                f"known: {', '.join(f.name for f in dataclasses.fields(cls))}, target, {', '.join(TARGET_OPTIONS)}"
            )
        options = {k: str(v) if isinstance(v, Path) else v for k, v in options.items() if v not in (None, False)}
        if "targets" in fields:
            fields["targets"] = [str(t) for t in fields["targets"]]
        return cls(model=str(model), profile=str(profile), target_options=options, **fields)

    def with_absolute_paths(self, cwd: Path | None = None) -> DeployRequest:
        """The same request with every local path made absolute, so a resume works from anywhere."""
        from edgecompress.profiles import is_profile_file
        from edgecompress.targets.registry import absolute_target_spec

        base = Path.cwd() if cwd is None else cwd

        def absolute(text: str) -> str:
            return str((base / Path(text).expanduser()).resolve())

        options = dict(self.target_options)
        for name in _PATH_TARGET_OPTIONS:
            if options.get(name):
                options[name] = absolute(str(options[name]))
        return dataclasses.replace(
            self,
            model=absolute(self.model),
            profile=absolute(self.profile) if is_profile_file(self.profile) else self.profile,
            data=self.data if self.data.startswith("sklearn:") else absolute(self.data),
            output=absolute(self.output),
            targets=[absolute_target_spec(spec, base) for spec in self.targets],
            target_options=options,
            micro={k: absolute(str(v)) if k == "tflm_dir" and v else v for k, v in self.micro.items()},
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, document: Any, *, where: Path) -> DeployRequest:
        """A request read back from request.json; a damaged or foreign file is refused clearly."""
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(document, dict) or not {"model", "profile"} <= set(document) or set(document) - names:
            raise EdgeCompressError(
                f"{where} is not a deploy request this edgecompress can replay.",
                "Start a new run with `edgecompress deploy`; the old folder's artifacts stay where they are.",
            )
        return cls(**document)
