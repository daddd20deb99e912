"""Password files of the local stack: one per user, generated once, readable by us only."""

from __future__ import annotations

import os
from pathlib import Path

from ioccore.principals import new_secret


def password_file(folder: Path, user: str) -> str:
    """``user``'s password in ``folder/<user>.password``, generated (once) when missing.

    The folder is 0700 and the file 0600 from its creation (``O_EXCL``: never a moment
    with wider permissions, and a second writer fails instead of replacing it).
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{user}.password"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(new_secret() + "\n")
    return path.read_text().strip()
