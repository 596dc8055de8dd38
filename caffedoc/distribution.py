"""Which distribution this machine runs, read from files: the system probe reports it
and the build chooses what to fetch by it."""

from __future__ import annotations

import functools

import distro


@functools.cache
def os_release() -> distro.LinuxDistribution:
    """The distribution from /etc/os-release and its kin, read as files: `distro` would
    otherwise run `lsb_release` and `uname` from PATH, unbounded, and a hung one (or a
    user's planted one) would hang the check."""
    return distro.LinuxDistribution(include_lsb=False, include_uname=False, include_oslevel=False)
