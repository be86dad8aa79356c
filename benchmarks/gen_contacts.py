"""Write a deterministic, realistic and messy French contacts CSV (default 1,000,000 rows).

Usage: python benchmarks/gen_contacts.py OUT.csv [ROWS]
Mess: a BOM, `;` delimiter, quoted names with `;` and newlines, upper-case domains,
spaces and dots in phones, +33 forms, ~1% bad emails, ~1% bad phones, ~0.5% bad dates
(dd/mm/yyyy and ISO mixed), ~0.2% missing keys and ~0.2% duplicate keys.
"""

from __future__ import annotations

import random
import sys

FIRST = [
    "Jean",
    "Marie",
    "Pierre",
    "Sophie",
    "Luc",
    "Claire",
    "Paul",
    "Julie",
    "Hugo",
    "Léa",
    "Louis",
    "Chloé",
    "Éric",
    "Anaïs",
]
LAST = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Lefèvre",
]
DOMAINS = ["orange.fr", "gmail.com", "Free.FR", "wanadoo.fr", "laposte.net", "hotmail.fr", "sfr.fr"]
CATEGORIES = ["hotel", "camping", "gite", "restaurant", "musee", "activite", "commerce", "chambre"]
COMMUNES = ["Val", "Mont", "Lac", "Pré", "Bois", "Roche", "Pont", "Saint-Jean"]
TAGS = ["adherent", "label-qualite", "accessible", "animaux", "wifi", "parking"]


def row(rng: random.Random, i: int) -> list[str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    key = f"P{i:07d}"
    roll = rng.random()
    if roll < 0.002:
        key = ""
    elif roll < 0.004 and i > 10:
        key = f"P{i - 7:07d}"
    name = f"{rng.choice(['Hôtel', 'Camping', 'Gîte', 'Chez'])} {last}"
    if rng.random() < 0.01:
        name = f'"{name}; {first}\nBâtiment B"'
    email = f"{first.lower()}.{last.lower()}{i}@{rng.choice(DOMAINS)}"
    roll = rng.random()
    if roll < 0.01:
        email = email.replace("@", "@@")
    elif roll < 0.08:
        email = ""
    digits = f"{rng.choice('12345679')}{rng.randrange(10**8):08d}"
    if digits[0] == "7":
        digits = "6" + digits[1:]
    shape = rng.random()
    if shape < 0.5:
        phone = "0" + " ".join([digits[0]] + [digits[k : k + 2] for k in range(1, 9, 2)])
    elif shape < 0.7:
        phone = "0" + ".".join(
            [digits[:1] + digits[1:3], *[digits[k : k + 2] for k in range(3, 9, 2)]]
        )
    elif shape < 0.85:
        phone = f"+33 {digits[0]} {digits[1:3]} {digits[3:5]} {digits[5:7]} {digits[7:]}"
    elif shape < 0.86:
        phone = "0" + digits[:5]  # too short
    else:
        phone = ""
    year, month, day = rng.randrange(2025, 2030), rng.randrange(1, 13), rng.randrange(1, 29)
    if rng.random() < 0.5:
        date = f"{year}-{month:02d}-{day:02d}"
    else:
        date = f"{day:02d}/{month:02d}/{year}"
    if rng.random() < 0.005:
        date = f"{day:02d}/{month + 20}/{year}"
    tags = ",".join(sorted(rng.sample(TAGS, rng.randrange(0, 4))))
    return [key, name, email, phone, rng.choice(CATEGORIES), rng.choice(COMMUNES), tags, date]


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "contacts-1m.csv"
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    rng = random.Random(20270301)
    with open(out, "w", encoding="utf-8-sig", newline="") as handle:
        handle.write("id;nom;email;telephone;category;commune;tags;contract_end\n")
        for i in range(rows):
            handle.write(";".join(row(rng, i)) + "\n")


if __name__ == "__main__":
    main()
