"""DICOS export (NEMA IIC 1) with pydicom: DX For Processing images and Threat Detection Reports.

One parcel exports as:

- ``dx_high.dcm`` and ``dx_low.dcm``: DICOS Digital X-Ray Image Storage - For Processing, one
  instance per energy (raw 16-bit counts, MONOCHROME2), OOI ID = tracking number;
- ``tdr_machine.dcm``: the detector's report (TDR Type MACHINE), one PTO per detection, alarm
  decision from the sorter route;
- ``tdr_operator.dcm`` when the parcel has a verdict: the latest operator judgement (TDR Type OPERATOR).

The five DICOS quirks the reference toolkit needs (shared/reference/dicos-and-tip.md A.8) are
applied. Unverified against the IIC 1 text: the ROI coordinate order (written x, y, z), the
dual-energy representation (one DX per energy), and the units of tube current and belt speed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from pydicom.datadict import add_dict_entries
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from smartscreen.domain.taxonomy import THREAT_CLASSES, ThreatCategory

DX_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.501.2.2"
TDR_STORAGE = "1.2.840.10008.5.1.4.1.1.501.3"
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.10.1451"  # pydicom's implementation-class root + project suffix
IMPLEMENTATION_VERSION = "SMARTSCREEN01"

add_dict_entries(
    {
        0x00082108: ("CS", "1", "Coordinate System (DICOS)", "", "DicosCoordinateSystem"),
        0x43000902: ("FL", "1", "Effective Energy (DICOS)", "", "DicosEffectiveEnergy"),
        0x40101080: ("DT", "1", "PTO Processing Start Time", "", "PtoProcessingStartTime"),
        0x40101081: ("DT", "1", "PTO Processing End Time", "", "PtoProcessingEndTime"),
        0x40101082: ("FL", "1", "PTO Total Processing Time", "", "PtoTotalProcessingTime"),
    }
)

_CATEGORY = {c.name: c for c in THREAT_CLASSES}


@dataclass(frozen=True, slots=True)
class DicosScan:
    """Pixel data and acquisition facts of one parcel scan."""

    high: npt.NDArray[np.uint16]
    low: npt.NDArray[np.uint16]
    kvp: float
    tube_current_ua: float
    belt_speed_mm_s: float
    line_pitch_mm: float
    channel_pitch_mm: float
    scanner_id: str


@dataclass(frozen=True, slots=True)
class DicosThreat:
    """One potential threat object: a box in scan pixels (x = channel, y = line)."""

    class_name: str
    x1: float
    y1: float
    x2: float
    y2: float
    probability: float


@dataclass(frozen=True, slots=True)
class DicosParcel:
    parcel_id: str
    centre_id: str
    line_id: str
    tracking_no: str
    carrier_code: str
    scanned_at_ns: int
    decided_at_ns: int | None
    alarm: bool
    model_id: str
    machine_threats: tuple[DicosThreat, ...]
    inference_ms: float
    operator_id: str | None = None
    operator_verdict: str | None = None  # threat_confirmed / false_alarm / needs_opening
    operator_threats: tuple[DicosThreat, ...] = ()
    operator_at_ns: int | None = None


def _dt(at_ns: int) -> str:
    return datetime.fromtimestamp(at_ns / 1e9, tz=UTC).strftime("%Y%m%d%H%M%S.%f")


def _file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    meta[0x00020004] = DataElement(0x00020004, "CS", "V03")  # quirk 1: DICOS version in the file meta
    return meta


def _common(ds: Dataset, parcel: DicosParcel, study_uid: str, modality: str, at_ns: int) -> None:
    stamp = datetime.fromtimestamp(at_ns / 1e9, tz=UTC)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.Modality = modality
    ds.StudyInstanceUID = study_uid
    ds.StudyID = parcel.parcel_id[-16:]
    ds.StudyDate = ds.ContentDate = stamp.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = stamp.strftime("%H%M%S.%f")
    ds.Manufacturer = "smartscreen"
    ds.InstitutionName = parcel.centre_id
    ds.StationName = parcel.line_id[:16]
    ds.PatientID = parcel.tracking_no or parcel.parcel_id  # OOI ID
    ds.IssuerOfPatientID = parcel.carrier_code  # OOI ID assigning authority
    ds.TypeOfPatientID = "BARCODE" if parcel.tracking_no else "TEXT"
    ds.PatientSex = "U"
    ds.DICOSVersion = "V03"
    ds.OOIType = "BAGGAGE"
    ds.AcquisitionStatus = "SUCCESSFUL"
    ds.ScanType = "OPERATIONAL"
    ds.AlgorithmRoutingCodeSequence = Sequence()


def _to_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def write_dx(parcel: DicosParcel, scan: DicosScan, energy: str, study_uid: str, series_uid: str) -> tuple[bytes, str]:
    """One DX For Processing instance for ``energy`` ("high" or "low"); returns (file bytes, SOP instance UID)."""
    pixels = scan.high if energy == "high" else scan.low
    if pixels.dtype != np.uint16 or pixels.ndim != 2:
        raise ValueError(f"DX pixels must be 2-D uint16, got {pixels.dtype} {pixels.shape}")
    sop_uid = generate_uid()
    ds = Dataset()
    ds.file_meta = _file_meta(DX_FOR_PROCESSING, sop_uid)
    ds.SOPClassUID = DX_FOR_PROCESSING
    ds.SOPInstanceUID = sop_uid
    _common(ds, parcel, study_uid, "XRAY", parcel.scanned_at_ns)
    ds.ImageType = ["ORIGINAL", "INTENSITY"]
    ds.PresentationIntentType = "FOR PROCESSING"
    ds[0x00080118] = DataElement(0x00080118, "CS", "MACHINE")  # quirk 3: Image Origin, VR CS
    ds[0x00082108] = DataElement(0x00082108, "CS", "LHS")  # quirk 2: Coordinate System
    ds.ManufacturerModelName = "smartscreen line-scan"
    ds.DeviceSerialNumber = scan.scanner_id[:64]
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1 if energy == "high" else 2
    ds.SeriesDescription = f"{energy} energy"
    ds.KVP = f"{scan.kvp:g}"
    ds.XRayTubeCurrentInuA = f"{scan.tube_current_ua:g}"
    ds.TableSpeed = float(scan.belt_speed_mm_s)
    ds.HighEnergyDetectors = "YES" if energy == "high" else "NO"
    ds.LowEnergyDetectors = "YES" if energy == "low" else "NO"
    ds[0x43000902] = DataElement(0x43000902, "FL", float(scan.kvp * (0.6 if energy == "high" else 0.4)))  # quirk 4
    ds.ImagePositionPatient = [0, 0, 0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [f"{scan.line_pitch_mm:g}", f"{scan.channel_pitch_mm:g}"]  # row spacing, column spacing
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    ds.PixelIntensityRelationship = "LIN"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"  # unspecified: raw detector counts
    ds.LossyImageCompression = "00"
    ds.AcquisitionContextSequence = Sequence()
    ds.PresentationLUTShape = "IDENTITY"
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    return _to_bytes(ds), sop_uid


def _pto(index: int, threat: DicosThreat, flag: str, refs: Sequence, start_ns: int, end_ns: int) -> Dataset:
    item = Dataset()
    item.PotentialThreatObjectID = index
    roi = Dataset()
    roi.ThreatROIBase = [float(threat.x1), float(threat.y1), 0.0]  # x, y, z (order unverified against IIC 1)
    roi.ThreatROIExtents = [float(threat.x2 - threat.x1), float(threat.y2 - threat.y1), 1.0]
    representation = Dataset()
    representation.ReferencedInstanceSequence = refs
    representation.ThreatROIVoxelSequence = Sequence([roi])
    representation.BoundingPolygon = [
        float(v) for v in (threat.x1, threat.y1, threat.x2, threat.y1, threat.x2, threat.y2, threat.x1, threat.y2)
    ]
    item.PTORepresentationSequence = Sequence([representation])
    assessment = Dataset()
    cls = _CATEGORY.get(threat.class_name)
    if cls is not None and cls.category is ThreatCategory.EXPLOSIVE:
        assessment.ThreatCategory = "EXPLOSIVE"
    elif cls is not None and cls.prohibited:
        assessment.ThreatCategory = "PI"
    else:
        assessment.ThreatCategory = "OTHER"
    assessment.ThreatCategoryDescription = threat.class_name
    assessment.ATDAbilityAssessment = "NO_INTERFERENCE"
    assessment.ATDAssessmentFlag = flag
    assessment.ATDAssessmentProbability = float(min(max(threat.probability, 0.0), 1.0))
    item.ATDAssessmentSequence = Sequence([assessment])
    item[0x40101080] = DataElement(0x40101080, "DT", _dt(start_ns))
    item[0x40101081] = DataElement(0x40101081, "DT", _dt(end_ns))
    item[0x40101082] = DataElement(0x40101082, "FL", float((end_ns - start_ns) / 1e6))
    return item


def write_tdr(
    parcel: DicosParcel,
    *,
    tdr_type: str,
    threats: tuple[DicosThreat, ...],
    alarm: bool,
    at_ns: int,
    processing_ms: float,
    study_uid: str,
    image_refs: tuple[str, ...],
    algorithm: tuple[str, ...],
) -> bytes:
    """A Threat Detection Report referencing the DX instances ``image_refs``."""
    sop_uid = generate_uid()
    ds = Dataset()
    ds.file_meta = _file_meta(TDR_STORAGE, sop_uid)
    ds.SOPClassUID = TDR_STORAGE
    ds.SOPInstanceUID = sop_uid
    _common(ds, parcel, study_uid, "TDR", at_ns)
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 2 if tdr_type == "MACHINE" else 3
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = generate_uid()
    ds.PositionReferenceIndicator = ""
    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID = DX_FOR_PROCESSING
    study_ref.ReferencedSOPInstanceUID = image_refs[0]
    ds.ReferencedStudySequence = Sequence([study_ref])
    refs = []
    for uid in image_refs:
        ref = Dataset()
        ref.ReferencedSOPClassUID = DX_FOR_PROCESSING
        ref.ReferencedSOPInstanceUID = uid
        refs.append(ref)
    start_ns = at_ns - int(processing_ms * 1e6)
    flag = "THREAT" if tdr_type == "MACHINE" else ("THREAT" if alarm else "NO_THREAT")
    ds.ThreatSequence = Sequence([_pto(i + 1, t, flag, Sequence(refs), start_ns, at_ns) for i, t in enumerate(threats)])
    ds.AbortFlag = "SUCCESS"
    ds.TDRType = tdr_type
    ds.ThreatDetectionAlgorithmAndVersion = list(algorithm)
    ds.AlarmDecisionTime = _dt(at_ns)
    ds.AlarmDecision = "ALARM" if alarm else "CLEAR"
    ds.NumberOfTotalObjects = len(threats)
    ds.NumberOfAlarmObjects = len(threats) if alarm else 0
    ds.TotalProcessingTime = float(processing_ms)
    ds.AdditionalScreeningPerformed = "NO"
    ds[0x40101075] = DataElement(0x40101075, "FD", 1.0)  # quirk 5: Image Scale Representation, FD, > 0
    return _to_bytes(ds)


def export_parcel(parcel: DicosParcel, scan: DicosScan) -> dict[str, bytes]:
    """All DICOS files of one parcel, by file name."""
    study_uid = generate_uid()
    series_uid = generate_uid()
    dx_high, high_uid = write_dx(parcel, scan, "high", study_uid, series_uid)
    dx_low, low_uid = write_dx(parcel, scan, "low", study_uid, series_uid)
    files = {"dx_high.dcm": dx_high, "dx_low.dcm": dx_low}
    files["tdr_machine.dcm"] = write_tdr(
        parcel,
        tdr_type="MACHINE",
        threats=parcel.machine_threats,
        alarm=parcel.alarm,
        at_ns=parcel.decided_at_ns or parcel.scanned_at_ns,
        processing_ms=parcel.inference_ms,
        study_uid=study_uid,
        image_refs=(high_uid, low_uid),
        algorithm=("smartscreen", *parcel.model_id.split("@", 1)),
    )
    if parcel.operator_verdict is not None and parcel.operator_at_ns is not None:
        files["tdr_operator.dcm"] = write_tdr(
            parcel,
            tdr_type="OPERATOR",
            threats=parcel.operator_threats,
            alarm=parcel.operator_verdict != "false_alarm",
            at_ns=parcel.operator_at_ns,
            processing_ms=0.0,
            study_uid=study_uid,
            image_refs=(high_uid, low_uid),
            algorithm=("smartscreen-review", f"operator={parcel.operator_id}", f"verdict={parcel.operator_verdict}"),
        )
    return files
