//! sysfs attribute reads as procfs' `util.SysReadFile` does them: one read(2) of at most
//! `SYSFS_READ_MAX` bytes, optionally relative to a directory held open. Shared by the sysfs
//! collectors (netclass, hwmon, thermal_zone).

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The most bytes node_exporter reads from one sysfs attribute (procfs' `util.SysReadFile` and
/// hwmon's `sysReadFile` both do a single 128-byte read(2)); longer values are truncated.
pub const SYSFS_READ_MAX: usize = 128;

/// Reads a sysfs attribute with one read(2) of at most `SYSFS_READ_MAX` bytes, as node_exporter
/// does. A single read matters beyond speed: some drivers return EAGAIN forever, which a
/// read-until-EOF loop would retry.
pub fn read_sysfs<'a>(path: &Path, buf: &'a mut [u8; SYSFS_READ_MAX]) -> io::Result<&'a [u8]> {
    read_once(File::open(path)?, buf)
}

fn read_once(mut f: File, buf: &mut [u8; SYSFS_READ_MAX]) -> io::Result<&[u8]> {
    let n = f.read(buf)?;
    Ok(&buf[..n])
}

/// A sysfs directory held open (O_PATH) so that its attributes are opened with openat(2)
/// relative to it. Opening a sysfs attribute by absolute path makes the kernel walk every
/// component and follow the `class/*` symlink each time, which is about a third of the cost
/// of reading the attribute.
#[derive(Debug)]
pub struct SysfsDir {
    fd: OwnedFd,
}

impl SysfsDir {
    pub fn open(path: &Path) -> io::Result<Self> {
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(path)?;
        Ok(Self { fd: dir.into() })
    }

    /// Reads attribute `name` of this directory like `read_sysfs`.
    pub fn read<'a>(&self, name: &CStr, buf: &'a mut [u8; SYSFS_READ_MAX]) -> io::Result<&'a [u8]> {
        // SAFETY: `name` is NUL-terminated and `self.fd` is an open descriptor.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: openat returned a new descriptor that nothing else owns.
        read_once(unsafe { File::from_raw_fd(fd) }, buf)
    }
}
