"""The one configuration file: YAML loaded into pydantic models (``extra="forbid"``).

Devices are chosen by URL. ``load_config`` reports the YAML line of every invalid
field, so ``smartscreen validate-config`` can point the integrator at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smartscreen.errors import ConfigError
from smartscreen.strict_yaml import load_yaml

SCANNER_SCHEMES = frozenset({"gige", "sim", "replay"})
IO_BOARD_SCHEMES = frozenset({"serial", "socket", "loop", "pty", "sim"})
GATE_SCHEMES = frozenset({"ioboard", "modbus", "plc-sim"})
WAYBILL_SCHEMES = frozenset({"file", "sqlite", "http", "https"})
JOURNAL_SCHEMES = frozenset({"sqlite", "postgresql"})


def _url_with_scheme(allowed: frozenset[str]) -> AfterValidator:
    def check(value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in allowed:
            raise ValueError(f"URL scheme {scheme!r} is not one of {sorted(allowed)} (got {value!r})")
        return value

    return AfterValidator(check)


ScannerUrl = Annotated[str, _url_with_scheme(SCANNER_SCHEMES)]
IoBoardUrl = Annotated[str, _url_with_scheme(IO_BOARD_SCHEMES)]
GateUrl = Annotated[str, _url_with_scheme(GATE_SCHEMES)]
WaybillUrl = Annotated[str, _url_with_scheme(WAYBILL_SCHEMES)]
JournalUrl = Annotated[str, _url_with_scheme(JOURNAL_SCHEMES)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CentreConfig(_Strict):
    id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Sorting-centre identifier, used in parcel ids and access control.",
    )
    name: str = Field(default="", description="Human-readable centre name.")


class ScannerGeometryConfig(_Strict):
    channels: int = Field(default=1024, ge=16, le=8192, description="Detector channels across the belt.")
    channel_pitch_mm: float = Field(default=1.6, gt=0, le=10, description="Detector channel pitch.")
    line_pitch_mm: float = Field(default=1.6, gt=0, le=10, description="Belt travel per detector line.")
    kvp: float = Field(
        default=140.0, ge=60, le=200, description="X-ray tube peak voltage (simulation and material LUT)."
    )


class LineConfig(_Strict):
    id: str = Field(
        min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$", description="Line identifier, unique in the centre."
    )
    scanner: ScannerUrl = Field(
        description="Line-scan source: gige://host[:port], sim://?seed=N (in-process emulator) or replay://dir."
    )
    io_board: IoBoardUrl = Field(
        description="Scanner I/O board link: serial:///dev/ttyUSB0?baud=921600, socket://host:port, loop://, pty://path or sim://."
    )
    gate: GateUrl = Field(
        default="ioboard://",
        description="Reject-gate driver: ioboard:// (through the I/O board), modbus://host:port?unit=1, or plc-sim:// (emulated PLC).",
    )
    geometry: ScannerGeometryConfig = Field(
        default_factory=ScannerGeometryConfig, description="Scanner geometry and tube settings."
    )
    belt_speed_mm_s: float = Field(default=2500.0, gt=0, le=5000, description="Nominal belt speed.")
    scanner_to_gate_mm: float = Field(
        default=5000.0, gt=0, description="Belt distance from the scan plane to the reject gate."
    )
    actuator_margin_ms: float = Field(
        default=150.0, ge=0, description="Time the gate needs before the parcel arrives to move reliably."
    )
    encoder_mm_per_count: float = Field(default=0.1, gt=0, description="Belt travel per encoder count.")
    barcode_to_scanner_mm: float = Field(
        default=1500.0,
        ge=0,
        description="Belt distance from the upstream barcode reader to the tunnel entry photo-eye.",
    )
    barcode_window_mm: float = Field(
        default=150.0, gt=0, description="Tolerance when matching a barcode read to a parcel by belt position."
    )
    eye_to_scan_mm: float = Field(
        default=200.0, ge=0, description="Belt distance from the tunnel entry photo-eye to the X-ray scan plane."
    )
    gate_guard_ms: float = Field(
        default=40.0,
        ge=0,
        description="How long before the gate deadline a parcel still without a decision gets a fail-closed REJECT.",
    )
    gate_ack_timeout_ms: float = Field(default=100.0, gt=0, description="Longest wait for the gate's acknowledgement.")


class DetectorConfig(_Strict):
    package: Path = Field(
        default=Path("models/smartscreen-yolo11n"), description="Model package directory (model.onnx + model.yaml)."
    )
    providers: tuple[Literal["cpu", "cuda", "tensorrt"], ...] = Field(
        default=("cpu",), description="onnxruntime execution providers in order of preference."
    )
    intra_op_threads: int = Field(default=2, ge=1, le=256, description="onnxruntime intra-op threads.")
    max_batch: int = Field(default=8, ge=1, le=256, description="Largest micro-batch.")
    max_wait_ms: float = Field(default=15.0, ge=0, le=1000, description="Longest a scan waits for a batch to fill.")
    conf_threshold: float = Field(default=0.25, ge=0, le=1, description="Minimum detection score kept.")
    tta: Literal["package", "none", "h", "hv", "d4"] = Field(
        default="package",
        description=(
            "Test-time augmentation: package = what model.yaml says (its metrics were measured that way); none = one "
            "inference per parcel; h / hv = also the mirrored views (2 / 4 inferences), d4 = mirrored and transposed (8); fused."
        ),
    )
    verifier: Literal["package", "off"] = Field(
        default="package",
        description=(
            "Second-look crop classifier: package = run the package's verifier when it has one (its metrics were "
            "measured with it); off = detector scores only (the recorded operating threshold then does not apply)."
        ),
    )
    timeout_ms: float = Field(
        default=1500.0, gt=0, description="An inference slower than this is an error (the parcel fails closed)."
    )

    @field_validator("verifier", mode="before")
    @classmethod
    def _verifier_yaml_boolean(cls, value: object) -> object:
        """YAML 1.1 reads a bare ``off`` (and ``on``) as a boolean: take it as the word it was written as."""
        if isinstance(value, bool):
            return "package" if value else "off"
        return value


class JournalConfig(_Strict):
    url: JournalUrl = Field(
        default="sqlite:///var/journal.db",
        description="Audit journal: sqlite:///path (WAL mode) or postgresql://user@host/db.",
    )
    image_dir: Path = Field(default=Path("var/images"), description="Content-addressed image store directory.")


class WaybillConfig(_Strict):
    url: WaybillUrl = Field(
        description="Waybill source: file://path.csv|.json (embedded table), sqlite:///path, or http(s)://service/base."
    )
    timeout_ms: float = Field(default=200.0, gt=0, description="HTTP lookup timeout.")
    cache_size: int = Field(default=100_000, ge=0, description="Entries kept in the lookup cache.")


class PolicyConfig(_Strict):
    path: Path = Field(
        default=Path("src/smartscreen/risk/policies/default.yaml"), description="Risk policy YAML (versioned data)."
    )
    review_routing: bool = Field(
        default=False, description="Route alarms to remote operators (REVIEW) instead of rejecting outright."
    )


class ApiConfig(_Strict):
    enabled: bool = Field(default=True, description="Serve the review API and web page.")
    host: str = Field(default="127.0.0.1", description="Bind address.")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port (0 picks a free one).")
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="Largest accepted request body.")
    max_page_size: int = Field(default=200, ge=1, le=10_000, description="Largest page of results.")
    token_ttl_s: int = Field(default=12 * 3600, ge=60, description="Lifetime of a login token.")


class RuntimeConfig(_Strict):
    queue_size: int = Field(default=64, ge=1, le=10_000, description="Parcels held between two stages of a line.")
    detector_queue: int = Field(default=64, ge=1, le=10_000, description="Scans waiting for the shared detector.")
    detect_margin_ms: float = Field(
        default=80.0, ge=0, description="Time kept after detection for fusion, policy, journal and gate command."
    )
    watchdog_stall_s: float = Field(default=2.0, gt=0, description="A stage silent this long is reported stalled.")
    drain_s: float = Field(default=3.0, ge=0, description="On stop, how long pending parcels may still be commanded.")
    connect_timeout_s: float = Field(
        default=10.0, ge=0, description="How long to retry a scanner that is not available yet (e.g. after a restart)."
    )


class MetricsConfig(_Strict):
    port: int | None = Field(
        default=None, ge=0, le=65535, description="Prometheus metrics port; None serves them only through the API."
    )


class SmartScreenConfig(_Strict):
    """Root of the configuration file."""

    version: Literal[1] = Field(default=1, description="Configuration schema version.")
    centre: CentreConfig = Field(description="The sorting centre this process serves.")
    lines: tuple[LineConfig, ...] = Field(min_length=1, description="Screening lines.")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="Detection engine settings.")
    journal: JournalConfig = Field(default_factory=JournalConfig, description="Audit journal and image store.")
    waybill: WaybillConfig = Field(description="Waybill lookup.")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="Risk policy.")
    api: ApiConfig = Field(default_factory=ApiConfig, description="Review API and web page.")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Prometheus metrics.")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, description="Line runtime: queues and watchdog.")

    @model_validator(mode="after")
    def _unique_line_ids(self) -> SmartScreenConfig:
        ids = [line.id for line in self.lines]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"line ids must be unique, duplicated: {duplicates}")
        return self


def _line_map(node: yaml.Node, path: tuple[str | int, ...], out: dict[tuple[str | int, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_map(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), out)


def _line_for(loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def parse_config(text: str, source: str = "<config>") -> SmartScreenConfig:
    """Parse and validate configuration text; raises ConfigError naming file, line and field."""
    try:
        node = yaml.compose(text)
        data = load_yaml(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {e}") from e
    if not isinstance(data, dict) or node is None:
        raise ConfigError(f"{source}: the top level must be a mapping of sections (centre, lines, ...)")
    lines: dict[tuple[str | int, ...], int] = {}
    _line_map(node, (), lines)
    try:
        return SmartScreenConfig.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = tuple(err["loc"])
            line = _line_for(loc, lines)
            field = ".".join(str(p) for p in loc) or "<root>"
            where = f"{source}:{line}" if line else source
            problems.append(f"{where}: {field}: {err['msg']}")
        raise ConfigError("invalid configuration\n  " + "\n  ".join(problems)) from e


def load_config(path: Path) -> SmartScreenConfig:
    """Read and validate a configuration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read configuration {path}: {e.strerror}") from e
    return parse_config(text, source=str(path))
