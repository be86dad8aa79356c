"""Write the binary files of the demo under `documents/`: the logo and two small PDFs.

Stdlib only and deterministic (no timestamps), so the committed files are
exactly what this script writes; `tests/test_demo.py` checks it.

Usage: python scripts/make_demo_documents.py [--out documents]
"""

from __future__ import annotations

import argparse
import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "documents"

# --------------------------------------------------------------------------- logo

LOGO_SIZE = 64
SKY = (0x1F, 0x6F, 0xB2)
SNOW = (0xFF, 0xFF, 0xFF)
ROCK = (0x3A, 0x4A, 0x5A)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def logo_png(size: int = LOGO_SIZE) -> bytes:
    """A 64x64 RGB PNG: two mountains with snowy tops on a blue sky (the 'Val des Aiguilles')."""
    rows = []
    for y in range(size):
        row = bytearray([0])  # filter type 0 (None) for every scanline
        for x in range(size):
            # two peaks: heights fall off linearly from their summits
            peak1 = size * 0.25 + abs(x - size * 0.35) * 1.1
            peak2 = size * 0.40 + abs(x - size * 0.72) * 1.0
            top = min(peak1, peak2)
            if y < top:
                colour = SKY
            elif y < top + size * 0.12:
                colour = SNOW
            else:
                colour = ROCK
            row.extend(colour)
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- PDF


def _pdf_text(text: str) -> str:
    """A PDF literal string in WinAnsi (cp1252), with its special characters escaped."""
    raw = text.encode("cp1252")
    out = []
    for byte in raw:
        char = chr(byte)
        if char in "()\\":
            out.append("\\" + char)
        elif byte < 32 or byte > 126:
            out.append(f"\\{byte:03o}")
        else:
            out.append(char)
    return "(" + "".join(out) + ")"


def simple_pdf(title: str, lines: list[str]) -> bytes:
    """A one-page A4 PDF 1.4 with a title and lines of Helvetica text, and a valid xref."""
    content = ["BT", "/F1 16 Tf", "56 780 Td", f"{_pdf_text(title)} Tj", "/F1 11 Tf", "0 -28 Td"]
    for line in lines:
        content += [f"{_pdf_text(line)} Tj", "0 -16 Td"]
    content.append("ET")
    stream = "\n".join(content).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


CHARTER = simple_pdf(
    "Charte qualité des partenaires 2027",
    [
        "Office de tourisme du Val des Aiguilles",
        "",
        "1. Des informations exactes : je mets à jour ma fiche au moins une fois par an.",
        "2. Un accueil de qualité : je réponds aux demandes sous 48 heures.",
        "3. Des prix affichés : mes tarifs publiés sont ceux pratiqués.",
        "4. Le respect du territoire : tri des déchets, économies d'eau et d'énergie.",
        "5. La promotion du Val : je diffuse le guide et l'agenda de l'Office.",
        "",
        "Signature du partenaire : ______________________   Date : ____________",
    ],
)

TOURIST_TAX_GUIDE = simple_pdf(
    "Comment lire votre relevé de taxe de séjour",
    [
        "1. La période : le relevé couvre un trimestre (nuitées du 1er au dernier jour).",
        "2. Les nuitées : nombre de personnes x nombre de nuits, hors mineurs exonérés.",
        "3. Le tarif : il dépend de votre classement (étoiles, épis) et de votre commune.",
        "4. La taxe additionnelle départementale : 10 % du montant, déjà incluse.",
        "5. Le paiement : par virement avant le 20 du mois qui suit le trimestre.",
        "",
        "Une question ? taxe-sejour@val-des-aiguilles.example - 04 65 71 00 00",
    ],
)


def files() -> dict[str, bytes]:
    """Every generated file, by name under documents/."""
    return {
        "logo.png": logo_png(),
        "charte-qualite-2027.pdf": CHARTER,
        "lire-releve-taxe-sejour.pdf": TOURIST_TAX_GUIDE,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write into")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files().items():
        (args.out / name).write_bytes(data)


if __name__ == "__main__":
    main()
