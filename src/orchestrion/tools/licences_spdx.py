"""Licence strings to SPDX expressions, and SPDX expressions to the obligations they carry.

A licence as written in a manifest or a lock file is one of: an SPDX id (``MIT``), an SPDX expression
(``(MIT OR Apache-2.0)``, ``GPL-2.0-only WITH Classpath-exception-2.0``), a deprecated id
(``GPL-3.0+``), a PyPI trove classifier (``License :: OSI Approved :: MIT License``) or free text
(``Apache License, Version 2.0``). `describe_licence` normalises what it recognises and classifies it
into a `LicenceCategory`; anything it does not recognise is `UNKNOWN`, never a guess.

Expressions combine as their meaning says: ``A OR B`` lets the user choose, so it is as restrictive as
the least restrictive known choice; ``A AND B`` binds both, so it is as restrictive as the most
restrictive part (unknown when a part is unknown and no known part is already copyleft or worse).
A ``WITH`` linking exception (Classpath, GCC runtime...) turns a strong copyleft into a weak one.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class LicenceCategory(enum.StrEnum):
    """What a licence asks of a project that depends on the licensed code, least demanding first."""

    PERMISSIVE = "permissive"
    WEAK_COPYLEFT = "weak_copyleft"
    STRONG_COPYLEFT = "strong_copyleft"
    NETWORK_COPYLEFT = "network_copyleft"
    NON_COMMERCIAL = "non_commercial"
    PROPRIETARY = "proprietary"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        """0 for permissive up to 6 for unknown."""
        return list(LicenceCategory).index(self)


@dataclass(frozen=True, kw_only=True)
class LicenceInfo:
    """A licence as written, its SPDX form when recognised, and its category.

    Attributes:
        raw: The text as found.
        spdx: The normalised SPDX expression; None when the text names a family without a version
            (``BSD``, ``GPL``) or is not recognised.
        category: The obligations it carries.
    """

    raw: str
    spdx: str | None
    category: LicenceCategory

    @property
    def shown(self) -> str:
        """The SPDX form when there is one, else the text as written (less a classifier's prefix)."""
        return self.spdx or _CLASSIFIER.sub("", self.raw).strip()


_PERMISSIVE = frozenset(
    {
        "0BSD", "AFL-2.1", "AFL-3.0", "Apache-1.1", "Apache-2.0", "Artistic-2.0", "BlueOak-1.0.0",
        "BSD-1-Clause", "BSD-2-Clause", "BSD-2-Clause-Patent", "BSD-3-Clause", "BSD-3-Clause-Clear",
        "BSD-4-Clause", "BSL-1.0", "bzip2-1.0.6", "CC-BY-3.0", "CC-BY-4.0", "CC0-1.0", "curl", "ECL-2.0",
        "HPND", "ICU", "ISC", "Libpng", "libpng-2.0", "MIT", "MIT-0", "MIT-CMU", "MulanPSL-2.0", "NCSA",
        "OpenSSL", "PHP-3.0", "PHP-3.01", "PostgreSQL", "PSF-2.0", "Python-2.0", "Python-2.0.1", "Ruby",
        "Unicode-3.0", "Unicode-DFS-2016", "Unlicense", "UPL-1.0", "W3C", "WTFPL", "X11", "Zlib",
        "ZPL-2.0", "ZPL-2.1",
    }
)  # fmt: skip
_WEAK = frozenset(
    {
        "APSL-2.0", "CDDL-1.0", "CDDL-1.1", "CECILL-C", "CPL-1.0", "EPL-1.0", "EPL-2.0", "IPL-1.0",
        "MPL-1.0", "MPL-1.1", "MPL-2.0", "MPL-2.0-no-copyleft-exception", "MS-PL", "MS-RL", "OFL-1.0",
        "OFL-1.1",
    }
)  # fmt: skip
_STRONG = frozenset({"CECILL-2.0", "CECILL-2.1", "EUPL-1.1", "EUPL-1.2", "Sleepycat"})
_NETWORK = frozenset(
    {"CPAL-1.0", "OSL-1.0", "OSL-2.0", "OSL-2.1", "OSL-3.0", "RPL-1.1", "RPL-1.5", "SSPL-1.0"}
)
_NON_COMMERCIAL = frozenset(
    {"BUSL-1.1", "Elastic-2.0", "PolyForm-Noncommercial-1.0.0", "PolyForm-Small-Business-1.0.0"}
)
# Exceptions that let code link to the licensed work without taking on its licence.
_LINKING_EXCEPTIONS = frozenset(
    {
        "autoconf-exception-2.0", "autoconf-exception-3.0", "bison-exception-2.2", "classpath-exception-2.0",
        "font-exception-2.0", "gcc-exception-2.0", "gcc-exception-3.1", "lgpl-3.0-linking-exception",
        "llvm-exception", "ocaml-lgpl-linking-exception", "qt-lgpl-exception-1.1",
        "universal-foss-exception-1.0", "wxwindows-exception-3.1",
    }
)  # fmt: skip
_GNU = re.compile(r"^(A?GPL|LGPL)-(\d\.\d)(\+|-only|-or-later)?$", re.IGNORECASE)
_PROPRIETARY_WORDS = frozenset(
    {"unlicensed", "proprietary", "commercial", "other/proprietary license", "all rights reserved"}
)
_CLASSIFIER = re.compile(r"^license\s*::\s*(?:osi approved\s*::\s*)?", re.IGNORECASE)

# Free-text spellings seen in package metadata, keyed by `_alias_key`. A family without a version maps to
# None with its category in `_FAMILIES`.
_ALIASES: dict[str, str] = {
    "mit license": "MIT", "the mit license": "MIT", "mit/x11": "MIT", "expat": "MIT",
    "apache 2": "Apache-2.0", "apache 2.0": "Apache-2.0", "apache2": "Apache-2.0", "apache-2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0", "apache license, version 2.0": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0", "apache software license": "Apache-2.0",
    "apache software license 2.0": "Apache-2.0", "asl 2.0": "Apache-2.0",
    "new bsd": "BSD-3-Clause", "new bsd license": "BSD-3-Clause", "3-clause bsd": "BSD-3-Clause",
    "bsd 3-clause": "BSD-3-Clause", "bsd-3": "BSD-3-Clause", "modified bsd": "BSD-3-Clause",
    "modified bsd license": "BSD-3-Clause", "revised bsd": "BSD-3-Clause",
    "2-clause bsd": "BSD-2-Clause", "bsd 2-clause": "BSD-2-Clause", "simplified bsd": "BSD-2-Clause",
    "freebsd": "BSD-2-Clause", "isc license": "ISC", "isc license (iscl)": "ISC", "iscl": "ISC",
    "psf": "PSF-2.0", "psf license": "PSF-2.0", "python software foundation license": "PSF-2.0",
    "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0", "mpl 2.0": "MPL-2.0", "mpl-2": "MPL-2.0",
    "mpl2": "MPL-2.0", "eclipse public license 2.0": "EPL-2.0", "the unlicense": "Unlicense",
    "the unlicense (unlicense)": "Unlicense", "cc0": "CC0-1.0", "cc0 1.0 universal": "CC0-1.0",
    "zlib license": "Zlib", "boost software license 1.0 (bsl-1.0)": "BSL-1.0",
    "boost software license 1.0": "BSL-1.0", "zope public license": "ZPL-2.1",
    "historical permission notice and disclaimer (hpnd)": "HPND",
    "gplv2": "GPL-2.0-only", "gpl v2": "GPL-2.0-only", "gpl2": "GPL-2.0-only", "gpl-2": "GPL-2.0-only",
    "gnu general public license v2 (gplv2)": "GPL-2.0-only", "gplv2+": "GPL-2.0-or-later",
    "gnu general public license v2 or later (gplv2+)": "GPL-2.0-or-later",
    "gplv3": "GPL-3.0-only", "gpl v3": "GPL-3.0-only", "gpl3": "GPL-3.0-only", "gpl-3": "GPL-3.0-only",
    "gnu general public license v3 (gplv3)": "GPL-3.0-only", "gplv3+": "GPL-3.0-or-later",
    "gnu general public license v3 or later (gplv3+)": "GPL-3.0-or-later",
    "lgplv2": "LGPL-2.0-only", "lgplv2+": "LGPL-2.0-or-later", "lgplv3": "LGPL-3.0-only",
    "lgplv3+": "LGPL-3.0-or-later", "lgpl-2.1": "LGPL-2.1-only",
    "gnu lesser general public license v2 (lgplv2)": "LGPL-2.0-only",
    "gnu lesser general public license v2 or later (lgplv2+)": "LGPL-2.0-or-later",
    "gnu lesser general public license v3 (lgplv3)": "LGPL-3.0-only",
    "gnu lesser general public license v3 or later (lgplv3+)": "LGPL-3.0-or-later",
    "agplv3": "AGPL-3.0-only", "agpl v3": "AGPL-3.0-only", "agpl-3": "AGPL-3.0-only",
    "agplv3+": "AGPL-3.0-or-later", "gnu affero general public license v3": "AGPL-3.0-only",
    "gnu affero general public license v3 (agplv3)": "AGPL-3.0-only",
    "gnu affero general public license v3 or later (agplv3+)": "AGPL-3.0-or-later",
    "server side public license": "SSPL-1.0", "sspl": "SSPL-1.0",
    "business source license 1.1": "BUSL-1.1", "elastic license 2.0": "Elastic-2.0",
}  # fmt: skip
_FAMILIES: dict[str, LicenceCategory] = {
    "bsd": LicenceCategory.PERMISSIVE,
    "bsd license": LicenceCategory.PERMISSIVE,
    "public domain": LicenceCategory.PERMISSIVE,
    "gpl": LicenceCategory.STRONG_COPYLEFT,
    "gnu general public license (gpl)": LicenceCategory.STRONG_COPYLEFT,
    "lgpl": LicenceCategory.WEAK_COPYLEFT,
    "gnu library or lesser general public license (lgpl)": LicenceCategory.WEAK_COPYLEFT,
    "agpl": LicenceCategory.NETWORK_COPYLEFT,
    "mpl": LicenceCategory.WEAK_COPYLEFT,
}
_KNOWN_IDS = {spdx.lower(): spdx for spdx in _PERMISSIVE | _WEAK | _STRONG | _NETWORK | _NON_COMMERCIAL}
_OPERATORS = frozenset({"and", "or", "with"})


def describe_licence(raw: str) -> LicenceInfo:
    """Normalise and classify a licence as written.

    Args:
        raw: An SPDX id or expression, a trove classifier or free text.

    Returns:
        The licence with its SPDX form (when recognised) and category (`UNKNOWN` when not recognised).
    """
    text = _CLASSIFIER.sub("", raw.strip())
    key = _alias_key(text)
    if not key or key.startswith("see license in") or key.startswith("see licence in"):
        return LicenceInfo(raw=raw, spdx=None, category=LicenceCategory.UNKNOWN)
    if key in _PROPRIETARY_WORDS:
        return LicenceInfo(raw=raw, spdx=None, category=LicenceCategory.PROPRIETARY)
    if key in _ALIASES:
        spdx = _ALIASES[key]
        return LicenceInfo(raw=raw, spdx=spdx, category=_classify_id(spdx))
    if key in _FAMILIES:
        return LicenceInfo(raw=raw, spdx=None, category=_FAMILIES[key])
    parser = _Parser(_tokens(text))
    parsed = parser.parse()
    if parsed is None:
        return LicenceInfo(raw=raw, spdx=None, category=LicenceCategory.UNKNOWN)
    spdx, category = parsed
    return LicenceInfo(raw=raw, spdx=None if parser.unrecognised else spdx, category=category)


def combine_all(infos: list[LicenceInfo]) -> LicenceInfo:
    """One licence for several that all apply (e.g. two versions of a package installed at once)."""
    if len(infos) == 1:
        return infos[0]
    raw = " AND ".join(f"({info.shown})" if " " in info.shown else info.shown for info in infos)
    return describe_licence(raw)


def normalise_id(token: str) -> str | None:
    """The SPDX id for one token (deprecated GNU forms made explicit), or None if unknown."""
    gnu = _GNU.match(token)
    if gnu:
        family, version, suffix = gnu.groups()
        family = family.upper()
        return f"{family}-{version}-{'or-later' if suffix in ('+', '-or-later') else 'only'}"
    lowered = token.lower()
    if lowered in _KNOWN_IDS:
        return _KNOWN_IDS[lowered]
    if lowered.startswith(("cc-by-nc", "cc-by-sa")):
        return token
    if lowered.startswith("licenseref-"):
        return token
    return None


def _classify_id(spdx: str) -> LicenceCategory:
    lowered = spdx.lower()
    if lowered.startswith("agpl-"):
        return LicenceCategory.NETWORK_COPYLEFT
    if lowered.startswith("lgpl-"):
        return LicenceCategory.WEAK_COPYLEFT
    if lowered.startswith("gpl-"):
        return LicenceCategory.STRONG_COPYLEFT
    if lowered.startswith("cc-by-nc"):
        return LicenceCategory.NON_COMMERCIAL
    if lowered.startswith("cc-by-sa"):
        return LicenceCategory.STRONG_COPYLEFT
    if lowered.startswith("licenseref-") and any(word in lowered for word in ("proprietary", "commercial")):
        return LicenceCategory.PROPRIETARY
    for ids, category in (
        (_PERMISSIVE, LicenceCategory.PERMISSIVE),
        (_WEAK, LicenceCategory.WEAK_COPYLEFT),
        (_STRONG, LicenceCategory.STRONG_COPYLEFT),
        (_NETWORK, LicenceCategory.NETWORK_COPYLEFT),
        (_NON_COMMERCIAL, LicenceCategory.NON_COMMERCIAL),
    ):
        if spdx in ids:
            return category
    return LicenceCategory.UNKNOWN


def _alias_key(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").split()).strip(" .")


def _tokens(text: str) -> list[str]:
    # "MIT/Apache-2.0" is the old Cargo spelling of "MIT OR Apache-2.0".
    spaced = re.sub(r"(?<=[A-Za-z0-9.+])/(?=[A-Za-z])", " OR ", text)
    return re.findall(r"\(|\)|[^\s()]+", spaced)


class _Parser:
    """Recursive descent over SPDX expression tokens: OR binds loosest, then AND, then WITH."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = tokens
        self._at = 0
        self.unrecognised = False

    def parse(self) -> tuple[str, LicenceCategory] | None:
        if not self._tokens:
            return None
        result = self._or()
        if result is None or self._at != len(self._tokens):
            return None
        return result

    def _peek(self) -> str | None:
        return self._tokens[self._at].lower() if self._at < len(self._tokens) else None

    def _or(self) -> tuple[str, LicenceCategory] | None:
        parts = [self._and()]
        while self._peek() == "or":
            self._at += 1
            parts.append(self._and())
        if any(part is None for part in parts):
            return None
        known = [part for part in parts if part is not None]
        category = min((category for _, category in known), key=lambda c: c.rank)
        return " OR ".join(text for text, _ in known), category

    def _and(self) -> tuple[str, LicenceCategory] | None:
        parts = [self._with()]
        while self._peek() == "and":
            self._at += 1
            parts.append(self._with())
        if any(part is None for part in parts):
            return None
        known = [part for part in parts if part is not None]
        categories = [category for _, category in known]
        certain = [c for c in categories if c is not LicenceCategory.UNKNOWN]
        worst = max(certain, key=lambda c: c.rank) if certain else LicenceCategory.UNKNOWN
        if LicenceCategory.UNKNOWN in categories and worst.rank < LicenceCategory.STRONG_COPYLEFT.rank:
            worst = LicenceCategory.UNKNOWN
        if len(known) == 1:
            return known[0][0], worst
        return " AND ".join(_wrap(text) for text, _ in known), worst

    def _with(self) -> tuple[str, LicenceCategory] | None:
        base = self._atom()
        if base is None or self._peek() != "with":
            return base
        self._at += 1
        exception = self._tokens[self._at] if self._at < len(self._tokens) else None
        if exception is None or exception.lower() in _OPERATORS or exception in "()":
            return None
        self._at += 1
        text, category = base
        if exception.lower() in _LINKING_EXCEPTIONS and category is LicenceCategory.STRONG_COPYLEFT:
            category = LicenceCategory.WEAK_COPYLEFT
        return f"{text} WITH {exception}", category

    def _atom(self) -> tuple[str, LicenceCategory] | None:
        token = self._tokens[self._at] if self._at < len(self._tokens) else None
        if token is None or token.lower() in _OPERATORS or token == ")":
            return None
        self._at += 1
        if token == "(":
            inner = self._or()
            if inner is None or self._peek() != ")":
                return None
            self._at += 1
            return inner
        spdx = normalise_id(token)
        if spdx is None:
            self.unrecognised = True
            # One unrecognised id inside an expression is unknown on its own; the operators around it
            # decide whether the whole expression still has a known category.
            return token, LicenceCategory.UNKNOWN
        return spdx, _classify_id(spdx)


def _wrap(text: str) -> str:
    return f"({text})" if " OR " in text else text
