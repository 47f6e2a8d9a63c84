"""GenICam: the XML the scanner emulator serves, and a tiny resolver for feature register addresses. Pure.

Only what the bridge needs: integer/float/command/enumeration features backed by registers
(``IntReg``, ``MaskedIntReg``, ``FloatReg``, ``StringReg``), followed through ``pValue``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import IntEnum


class DevReg(IntEnum):
    """Device-specific registers of the smartscreen scanner emulator (described by its GenICam XML)."""

    WIDTH = 0x10000000  # RO: line record width in pixels of the pixel format
    HEIGHT = 0x10000004  # RW: lines per block
    PIXEL_FORMAT = 0x10000008  # RW: PFNC code
    PAYLOAD_SIZE = 0x1000000C  # RO: bytes per full block
    ACQUISITION_START = 0x10000010  # WO command
    ACQUISITION_STOP = 0x10000014  # WO command
    ACQUISITION_MODE = 0x10000018  # RW: 0 = Continuous
    LINE_RATE = 0x1000001C  # RO: float32, lines per second
    CHANNEL_COUNT = 0x10000020  # RO: detector channels per energy
    ENCODER_COUNTS_PER_M = 0x10000024  # RO
    LINE_PITCH_UM = 0x10000028  # RO
    CALIBRATION_REQUEST = 0x1000002C  # WO command: send dark then air reference lines again
    EXTENDED_ID_MODE = 0x10000030  # RW: GevGVSPExtendedIDMode (0 = 16-bit block IDs, 1 = 64-bit)
    TL_PARAMS_LOCKED = 0x10000034  # RW
    ACQUISITION_STATUS = 0x10000038  # RO: 1 while streaming
    BELT_SPEED_MM_S = 0x1000003C  # RO: float32


XML_ADDRESS = 0x20000000
XML_FILENAME = "smartscreen-scanner.xml"


def _intreg(name: str, address: int, access: str) -> str:
    return (
        f'<IntReg Name="{name}"><Address>0x{address:08X}</Address><Length>4</Length>'
        f"<AccessMode>{access}</AccessMode><pPort>Device</pPort><Sign>Unsigned</Sign>"
        f"<Endianess>BigEndian</Endianess></IntReg>"
    )


def _integer(name: str, reg: str, lo: int = 0, hi: int = 0x7FFFFFFF) -> str:
    return f'<Integer Name="{name}" NameSpace="Standard"><pValue>{reg}</pValue><Min>{lo}</Min><Max>{hi}</Max></Integer>'


def _string(name: str, address: int, length: int) -> str:
    return (
        f'<StringReg Name="{name}" NameSpace="Standard"><Address>0x{address:X}</Address><Length>{length}</Length>'
        f"<AccessMode>RO</AccessMode><pPort>Device</pPort></StringReg>"
    )


def _command(name: str, reg: str) -> str:
    return f'<Command Name="{name}" NameSpace="Standard"><pValue>{reg}</pValue><CommandValue>1</CommandValue></Command>'


def _floatreg(name: str, address: int) -> str:
    return (
        f'<FloatReg Name="{name}" NameSpace="Standard"><Address>0x{address:08X}</Address><Length>4</Length>'
        f"<AccessMode>RO</AccessMode><pPort>Device</pPort><Endianess>BigEndian</Endianess></FloatReg>"
    )


def scanner_xml(model: str = "DualEnergyLineScan", vendor: str = "smartscreen") -> str:
    """The GenICam description of the scanner emulator's features."""
    features = [
        "DeviceVendorName",
        "DeviceModelName",
        "DeviceSerialNumber",
        "Width",
        "Height",
        "PixelFormat",
        "PayloadSize",
        "AcquisitionMode",
        "AcquisitionStart",
        "AcquisitionStop",
        "AcquisitionLineRate",
        "BeltSpeed",
        "ChannelCount",
        "EncoderCountsPerMeter",
        "LinePitchMicrometers",
        "CalibrationRequest",
        "GevGVSPExtendedIDMode",
        "TLParamsLocked",
        "GevSCPSPacketSize",
        "GevSCPD",
        "GevTimestampTickFrequency",
    ]
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<RegisterDescription ModelName="{model}" VendorName="{vendor}" StandardNameSpace="None" '
        'SchemaMajorVersion="1" SchemaMinorVersion="1" SchemaSubMinorVersion="0" MajorVersion="1" '
        'MinorVersion="0" SubMinorVersion="0" ToolTip="smartscreen dual-energy line-scan scanner emulator" '
        'ProductGuid="5f0c7a52-2b41-4f7e-9d38-2f1d4c7b9e01" VersionGuid="5f0c7a52-2b41-4f7e-9d38-2f1d4c7b9e02" '
        'xmlns="http://www.genicam.org/GenApi/Version_1_1" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.genicam.org/GenApi/Version_1_1 GenApiSchema_Version_1_1.xsd">',
        '<Category Name="Root" NameSpace="Standard">'
        + "".join(f"<pFeature>{f}</pFeature>" for f in features)
        + "</Category>",
        _string("DeviceVendorName", 0x48, 32),
        _string("DeviceModelName", 0x68, 32),
        _string("DeviceSerialNumber", 0xD8, 16),
        _integer("Width", "WidthReg"),
        _intreg("WidthReg", DevReg.WIDTH, "RO"),
        _integer("Height", "HeightReg", 1, 4096),
        _intreg("HeightReg", DevReg.HEIGHT, "RW"),
        '<Enumeration Name="PixelFormat" NameSpace="Standard">'
        '<EnumEntry Name="Mono16"><Value>17825799</Value></EnumEntry>'
        '<EnumEntry Name="Mono12Packed"><Value>17563654</Value></EnumEntry>'
        '<EnumEntry Name="Mono12p"><Value>17563719</Value></EnumEntry>'
        "<pValue>PixelFormatReg</pValue></Enumeration>",
        _intreg("PixelFormatReg", DevReg.PIXEL_FORMAT, "RW"),
        _integer("PayloadSize", "PayloadSizeReg"),
        _intreg("PayloadSizeReg", DevReg.PAYLOAD_SIZE, "RO"),
        '<Enumeration Name="AcquisitionMode" NameSpace="Standard">'
        '<EnumEntry Name="Continuous"><Value>0</Value></EnumEntry>'
        "<pValue>AcquisitionModeReg</pValue></Enumeration>",
        _intreg("AcquisitionModeReg", DevReg.ACQUISITION_MODE, "RW"),
        _command("AcquisitionStart", "AcquisitionStartReg"),
        _intreg("AcquisitionStartReg", DevReg.ACQUISITION_START, "WO"),
        _command("AcquisitionStop", "AcquisitionStopReg"),
        _intreg("AcquisitionStopReg", DevReg.ACQUISITION_STOP, "WO"),
        _floatreg("AcquisitionLineRate", DevReg.LINE_RATE),
        _floatreg("BeltSpeed", DevReg.BELT_SPEED_MM_S),
        _integer("ChannelCount", "ChannelCountReg"),
        _intreg("ChannelCountReg", DevReg.CHANNEL_COUNT, "RO"),
        _integer("EncoderCountsPerMeter", "EncoderCountsPerMeterReg"),
        _intreg("EncoderCountsPerMeterReg", DevReg.ENCODER_COUNTS_PER_M, "RO"),
        _integer("LinePitchMicrometers", "LinePitchReg"),
        _intreg("LinePitchReg", DevReg.LINE_PITCH_UM, "RO"),
        _command("CalibrationRequest", "CalibrationRequestReg"),
        _intreg("CalibrationRequestReg", DevReg.CALIBRATION_REQUEST, "WO"),
        _integer("GevGVSPExtendedIDMode", "ExtendedIDModeReg", 0, 1),
        _intreg("ExtendedIDModeReg", DevReg.EXTENDED_ID_MODE, "RW"),
        _integer("TLParamsLocked", "TLParamsLockedReg", 0, 1),
        _intreg("TLParamsLockedReg", DevReg.TL_PARAMS_LOCKED, "RW"),
        '<Integer Name="GevSCPSPacketSize" NameSpace="Standard"><pValue>GevSCPSPacketSizeReg</pValue>'
        "<Min>576</Min><Max>9000</Max></Integer>",
        '<MaskedIntReg Name="GevSCPSPacketSizeReg"><Address>0xD04</Address><Length>4</Length>'
        "<AccessMode>RW</AccessMode><pPort>Device</pPort><LSB>31</LSB><MSB>16</MSB><Sign>Unsigned</Sign>"
        "<Endianess>BigEndian</Endianess></MaskedIntReg>",
        _integer("GevSCPD", "GevSCPDReg"),
        _intreg("GevSCPDReg", 0xD08, "RW"),
        _integer("GevTimestampTickFrequency", "GevTimestampTickFrequencyReg"),
        _intreg("GevTimestampTickFrequencyReg", 0x940, "RO"),
        '<Port Name="Device" NameSpace="Standard"/>',
        "</RegisterDescription>",
    ]
    return "\n".join(parts) + "\n"


class GenicamError(ValueError):
    """A feature is missing from the XML or not backed by a register."""


@dataclass(frozen=True, slots=True)
class FeatureRegister:
    address: int
    length: int
    kind: str  # IntReg, MaskedIntReg, FloatReg, StringReg
    command_value: int | None = None  # for Command features: the value to write


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def resolve_features(xml_text: str) -> dict[str, FeatureRegister]:
    """Map every feature name to the register behind it (following ``pValue`` chains).

    Features whose address is computed (``pAddress``, ``IntSwissKnife``) are left out.
    """
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as e:
        raise GenicamError(f"GenICam XML does not parse: {e}") from e
    nodes: dict[str, ET.Element] = {}
    for el in root.iter():
        name = el.get("Name")
        # EnumEntry names (e.g. TriggerSelector's "AcquisitionStart") are values, not features
        if name and _local(el.tag) not in ("EnumEntry", "pVariable") and name not in nodes:
            nodes[name] = el

    def child_text(el: ET.Element, tag: str) -> str | None:
        for c in el:
            if _local(c.tag) == tag and c.text:
                return c.text.strip()
        return None

    def resolve(name: str, depth: int = 0) -> FeatureRegister | None:
        el = nodes.get(name)
        if el is None or depth > 8:
            return None
        kind = _local(el.tag)
        if kind in ("IntReg", "MaskedIntReg", "FloatReg", "StringReg", "Register"):
            addr, length = child_text(el, "Address"), child_text(el, "Length")
            if addr is None or length is None:
                return None
            try:
                return FeatureRegister(int(addr, 0), int(length, 0), kind)
            except ValueError:
                return None
        target = child_text(el, "pValue")
        return resolve(target, depth + 1) if target else None

    out: dict[str, FeatureRegister] = {}
    for name, el in nodes.items():
        reg = resolve(name)
        if reg is not None:
            command = child_text(el, "CommandValue") if _local(el.tag) == "Command" else None
            if command is not None and re.fullmatch(r"0[xX][0-9a-fA-F]+|[1-9][0-9]*|0", command):
                reg = FeatureRegister(reg.address, reg.length, reg.kind, int(command, 0))
            out[name] = reg
    return out
