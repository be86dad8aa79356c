"""Write the demo audience `audiences/contacts.csv`: ~200 French tourism providers.

Deterministic (fixed seed, no clock): running it twice gives the same bytes, and
`tests/test_demo.py` checks that the committed CSV is what this script writes.

The file is deliberately messy, the way real exports from a tourism information
system are, so that `campaignctl audience import` has something to normalise and
to reject:

- one owner with three gîtes (one address, three records), a hotel-restaurant
  sharing the address of its hotel, the same address written in two cases;
- records with a mobile but no email (SMS only), records with neither;
- national phone formats (``04 65 71 12 34``, ``06.12.34.56.78``, ``0465711234``),
  a few ``+33`` numbers, a couple of invalid emails and phone numbers;
- upper-case email domains, stray spaces, accents everywhere;
- ISO dates with a few ``dd/mm/yyyy`` ones, contract ends clustered in the weeks
  after late November 2026 so that relative-date segments (``today+15d``) match;
- a ``tags`` list column (comma separated) and an ``opening_periods`` periods
  column written ``2026-04-01..2026-10-31;2026-12-20..2027-01-05``.

Landlines use the 04 65 71 block that ARCEP reserves for fiction; email domains
end in ``.example`` (RFC 2606), so nothing here reaches a real person.

Usage: python scripts/make_demo_contacts.py [--out audiences/contacts.csv]
"""

from __future__ import annotations

import argparse
import csv
import io
import random
from datetime import date, timedelta
from pathlib import Path

SEED = 2027
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "audiences" / "contacts.csv"

HEADERS = [
    "id",
    "nom",
    "category",
    "commune",
    "email",
    "telephone",
    "portable",
    "tags",
    "contract_end",
    "adhesion_depuis",
    "opening_periods",
    "capacite",
    "classement",
    "site_web",
    "statut",
]

COMMUNES = [
    "Saint-Martin-du-Val",
    "Les Aiguilles",
    "Mont-Roux",
    "Pralong",
    "Le Bourget-en-Val",
    "Sainte-Foy-des-Neiges",
    "Écharvines",
]

# (category, id prefix, count, name prefixes)
CATEGORIES = [
    ("hotel", "HOT", 34, ["Hôtel", "Hôtel", "Grand Hôtel", "Hôtel-Restaurant"]),
    ("camping", "CAM", 20, ["Camping", "Camping", "Camping municipal"]),
    ("gite", "GIT", 52, ["Gîte", "Gîte", "Chalet", "Meublé"]),
    ("chambres_hotes", "CHH", 26, ["Chambres d'hôtes", "Maison d'hôtes"]),
    ("restaurant", "RES", 46, ["Restaurant", "Auberge", "Crêperie", "Brasserie", "Pizzeria"]),
    ("activite", "ACT", 22, ["École de ski", "Location VTT", "Bureau des guides", "Parapente"]),
]

NAMES = [
    "du Lac",
    "des Cimes",
    "Le Chamois",
    "L'Edelweiss",
    "Les Marmottes",
    "du Torrent",
    "Les Pins",
    "Les Mélèzes",
    "du Glacier",
    "Le Soleil d'Or",
    "du Vieux Moulin",
    "La Grange",
    "Le Fenil",
    "L'Alpage",
    "Les Écureuils",
    "Le Chalet Blanc",
    "du Rocher",
    "Le Clos Fleuri",
    "Les Sapins",
    "du Col",
    "La Bergerie",
    "Le Refuge",
    "Les Gentianes",
    "Bellevue",
    "La Croix Blanche",
    "Les Myrtilles",
    "du Pré Fleuri",
    "Le Grand Tétras",
    "La Fruitière",
    "Les Airelles",
]

ISP_DOMAINS = ["orange.example", "laposte.example", "free.example", "wanadoo.example"]
LOCAL_PARTS = ["contact", "reservation", "accueil", "info", "bonjour"]
TAGS = [
    ("adherent", 0.70),
    ("accueil-velo", 0.20),
    ("qualite-tourisme", 0.15),
    ("famille-plus", 0.10),
    ("clef-verte", 0.08),
]
STATUSES = ["actif"] * 92 + ["en_travaux"] * 3 + ["fermeture_definitive"] * 3 + ["litige"] * 2


def slug(text: str) -> str:
    table = str.maketrans("àâäéèêëîïôöùûüç'’ ", "aaaeeeeiioouuuc---")
    out = text.lower().translate(table)
    out = "".join(c for c in out if c.isalnum() or c == "-")
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")


def landline(rng: random.Random) -> str:
    """A number in the 04 65 71 block reserved for fiction, in one of the usual formats."""
    digits = f"046571{rng.randrange(10000):04d}"
    pairs = [digits[i : i + 2] for i in range(0, 10, 2)]
    style = rng.random()
    if style < 0.55:
        return " ".join(pairs)
    if style < 0.75:
        return ".".join(pairs)
    if style < 0.9:
        return digits
    return "+33 " + digits[1] + " " + " ".join(pairs[1:])


def mobile(rng: random.Random) -> str:
    digits = f"0{rng.choice('67')}{rng.randrange(10**8):08d}"
    pairs = [digits[i : i + 2] for i in range(0, 10, 2)]
    style = rng.random()
    if style < 0.5:
        return " ".join(pairs)
    if style < 0.8:
        return ".".join(pairs)
    if style < 0.9:
        return digits
    return "+33" + digits[1:]


def iso_or_french(rng: random.Random, day: date) -> str:
    """Mostly ISO dates; about one in twelve written dd/mm/yyyy, as spreadsheets do."""
    return day.strftime("%d/%m/%Y") if rng.random() < 0.08 else day.isoformat()


def contract_end(rng: random.Random, member: bool) -> str:
    if not member:
        # lapsed members: a contract that ended in the last months, or none at all
        if rng.random() < 0.5:
            return ""
        return iso_or_french(rng, date(2026, 11, 23) - timedelta(days=rng.randrange(5, 200)))
    if rng.random() < 0.3:  # renewals due in the coming weeks (the demo runs from late 2026)
        day = date(2026, 11, 20) + timedelta(days=rng.randrange(0, 42))
    else:
        day = date(2027, 1, 1) + timedelta(days=rng.randrange(0, 365))
    return iso_or_french(rng, day)


def opening_periods(rng: random.Random, category: str) -> str:
    if rng.random() < 0.1:
        return ""
    if category == "camping":
        start = date(2026, 4, rng.choice([1, 15, 30]))
        end = date(2026, 9, rng.choice([15, 30]))
        return f"{start}..{end}"
    if category in ("hotel", "restaurant", "chambres_hotes") and rng.random() < 0.35:
        return "2026-01-01..2026-12-31"
    summer_start = rng.choice(["05-15", "06-01", "06-15"])
    summer = f"2026-{summer_start}..2026-{rng.choice(['09-15', '09-30', '10-31'])}"
    winter = f"2026-12-{rng.choice(['13', '19', '20'])}..2027-04-{rng.choice(['05', '12', '19'])}"
    if category == "activite":
        return rng.choice([summer, winter, f"{summer};{winter}"])
    return f"{summer};{winter}" if rng.random() < 0.7 else summer


def capacity(rng: random.Random, category: str) -> str:
    ranges = {
        "hotel": (12, 120),
        "camping": (40, 400),
        "gite": (2, 15),
        "chambres_hotes": (2, 15),
        "restaurant": (20, 150),
    }
    if category not in ranges or rng.random() < 0.08:
        return ""
    low, high = ranges[category]
    return str(rng.randint(low, high))


def classement(rng: random.Random, category: str) -> str:
    if category in ("hotel", "camping"):
        return str(rng.choice([1, 2, 2, 3, 3, 3, 4, 4, 5]))
    if category == "gite" and rng.random() < 0.6:
        return str(rng.choice([1, 2, 3, 3, 4]))
    return ""


def build_rows(rng: random.Random) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for category, prefix, count, name_prefixes in CATEGORIES:
        for n in range(1, count + 1):
            name = f"{rng.choice(name_prefixes)} {rng.choice(NAMES)}"
            commune = rng.choice(COMMUNES)
            domain = f"{slug(name)}.example"
            if rng.random() < 0.35:
                email = f"{slug(name).replace('-', '.')}@{rng.choice(ISP_DOMAINS)}"
            else:
                email = f"{rng.choice(LOCAL_PARTS)}@{domain}"
            member = rng.random() < 0.72
            tags = [t for t, p in TAGS[1:] if rng.random() < p]
            if member:
                tags.insert(0, "adherent")
            since = date(2008, 1, 1) + timedelta(days=rng.randrange(0, 18 * 365))
            rows.append(
                {
                    "id": f"{prefix}-{n:03d}",
                    "nom": name,
                    "category": category,
                    "commune": commune,
                    "email": email,
                    "telephone": landline(rng) if rng.random() < 0.85 else "",
                    "portable": mobile(rng) if rng.random() < 0.55 else "",
                    "tags": ",".join(tags),
                    "contract_end": contract_end(rng, member),
                    "adhesion_depuis": iso_or_french(rng, since) if member else "",
                    "opening_periods": opening_periods(rng, category),
                    "capacite": capacity(rng, category),
                    "classement": classement(rng, category),
                    "site_web": f"https://www.{domain}" if rng.random() < 0.6 else "",
                    "statut": rng.choice(STATUSES),
                }
            )
    make_messy(rng, rows)
    return rows


def by_id(rows: list[dict[str, str]], record_id: str) -> dict[str, str]:
    return next(r for r in rows if r["id"] == record_id)


def make_messy(rng: random.Random, rows: list[dict[str, str]]) -> None:
    """The specific cases the demo relies on; fixed ids so docs and tests can name them."""
    # An owner of three gîtes: one address for three records (group_by_email), one of them
    # typed with an upper-case domain and stray spaces; it is still the same address.
    for record_id, name in (
        ("GIT-001", "Gîte La Grange"),
        ("GIT-002", "Gîte Le Fenil"),
        ("GIT-003", "Gîte du Vieux Four"),
    ):
        row = by_id(rows, record_id)
        row.update(
            nom=name,
            commune="Pralong",
            email="famille.bouvier@orange.example",
            portable="06 12 48 75 31",
            tags="adherent,accueil-velo",
            contract_end="2026-12-01",
            adhesion_depuis="2012-01-16",
            site_web="https://www.gites-bouvier.example",
            statut="actif",
        )
    by_id(rows, "GIT-003")["email"] = "  Famille.Bouvier@ORANGE.EXAMPLE "
    # A hotel and its restaurant share one address (one email for both records).
    by_id(rows, "HOT-001").update(
        nom="Hôtel-Restaurant La Croix Blanche",
        email="contact@croix-blanche.example",
        commune="Saint-Martin-du-Val",
        tags="adherent,qualite-tourisme,famille-plus",
        contract_end="2026-12-04",
        site_web="https://www.croix-blanche.example",
        statut="actif",
    )
    by_id(rows, "RES-001").update(
        nom="Restaurant La Croix Blanche",
        email="Contact@Croix-Blanche.EXAMPLE",
        commune="Saint-Martin-du-Val",
        tags="adherent",
        site_web="https://www.croix-blanche.example",
        statut="actif",
    )
    # Upper-case domains, spaces around values, accents in names.
    for record_id in ("HOT-005", "CAM-004", "CHH-007", "RES-012"):
        row = by_id(rows, record_id)
        local, _, domain = row["email"].partition("@")
        row["email"] = f"{local}@{domain.upper()}"
    for record_id in ("HOT-009", "GIT-020", "RES-020", "ACT-005"):
        row = by_id(rows, record_id)
        row["email"] = f" {row['email']}  "
        row["nom"] = f"{row['nom']} "
    by_id(rows, "CHH-002")["nom"] = "Chambres d'hôtes « Les Écureuils » chez Hélène & Raphaël"
    # No email but a mobile: reached by SMS only (channels: [email, sms]).
    for i, record_id in enumerate(
        (
            "GIT-030",
            "GIT-031",
            "GIT-032",
            "CHH-010",
            "CHH-011",
            "RES-030",
            "RES-031",
            "ACT-010",
            "ACT-011",
            "CAM-010",
            "HOT-020",
            "GIT-033",
        )
    ):
        row = by_id(rows, record_id)
        row["email"] = ""
        row["portable"] = row["portable"] or mobile(rng)
        if i % 4 == 0:  # a few mobiles written in international format
            row["portable"] = "+33 6 " + " ".join(f"{rng.randrange(100):02d}" for _ in range(4))
    # Neither email nor mobile: listed by the plan as not contactable.
    for record_id in ("GIT-040", "GIT-041", "RES-040", "ACT-015", "CHH-015"):
        row = by_id(rows, record_id)
        row.update(email="", portable="")
    by_id(rows, "RES-040")["telephone"] = ""  # not even a landline
    # Invalid addresses and numbers: rejected (with a reason) at import.
    by_id(rows, "HOT-012")["email"] = "reservation@hotel-des-cimes"  # no dot in the domain
    by_id(rows, "CAM-008")["email"] = "camping.les.pins.orange.example"  # no @
    by_id(rows, "RES-015")["email"] = "info@@auberge-du-col.example"
    by_id(rows, "GIT-045")["portable"] = "06 12 34"  # too short
    by_id(rows, "ACT-018")["telephone"] = "04 65 71 12 34 56 78"  # too long
    # A website typed without its scheme.
    row = by_id(rows, "HOT-014")
    row["site_web"] = f"www.{slug(row['nom'])}.example"
    # Do-not-disturb: an explicit tag, and statuses that must not be solicited.
    by_id(rows, "HOT-007")["tags"] += ",ne-pas-solliciter"
    by_id(rows, "RES-005")["tags"] = "ne-pas-solliciter"
    by_id(rows, "GIT-010").update(statut="fermeture_definitive")
    by_id(rows, "CAM-003").update(statut="litige")
    # A couple of dates in dd/mm/yyyy for sure (besides the random ones).
    by_id(rows, "HOT-002")["contract_end"] = "03/12/2026"
    by_id(rows, "CAM-002")["adhesion_depuis"] = "15/03/2012"


def render(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HEADERS, delimiter=";", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="CSV file to write")
    args = parser.parse_args(argv)
    data = render(build_rows(random.Random(SEED)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)


if __name__ == "__main__":
    main()
