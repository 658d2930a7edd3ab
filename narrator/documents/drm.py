"""DRM: an EPUB whose text is encrypted cannot be read, and narrator does not try.

META-INF/encryption.xml may list fonts obfuscated as the EPUB standard allows (the IDPF and Adobe font
algorithms); anything else listed there, or a rights file (Adobe ADEPT's rights.xml, Apple's sinf.xml,
Readium LCP's license.lcpl), means the book is locked.
"""

from __future__ import annotations

import posixpath

from .archive import Archive
from .refuse import refused
from .xml import attr, children, local, parse

ENCRYPTION = "META-INF/encryption.xml"
_RIGHTS = ("META-INF/rights.xml", "META-INF/sinf.xml", "META-INF/license.lcpl")
_FONT_ALGORITHMS = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})
_FONT_EXTENSIONS = frozenset({".ttf", ".otf", ".woff", ".woff2", ".ttc", ".pfb", ".eot"})
DRM_FREE_ONLY = "narrator reads DRM-free books only"


def check_drm(archive: Archive) -> None:
    for path in _RIGHTS:
        if archive.has(path):
            raise refused(archive.name, f"is DRM-protected ({path}); {DRM_FREE_ONLY}")
    if not archive.has(ENCRYPTION):
        return
    root = parse(archive, ENCRYPTION, ENCRYPTION)
    for data in children(root, "EncryptedData"):
        algorithm = next((attr(e, "Algorithm") for e in data.iter() if local(e.tag) == "EncryptionMethod"), "")
        uri = next((attr(e, "URI") for e in data.iter() if local(e.tag) == "CipherReference"), "")
        font = posixpath.splitext(uri.lower())[1] in _FONT_EXTENSIONS or algorithm in _FONT_ALGORITHMS
        if not font:
            raise refused(archive.name, f"is DRM-protected ({ENCRYPTION} encrypts its text); {DRM_FREE_ONLY}")
