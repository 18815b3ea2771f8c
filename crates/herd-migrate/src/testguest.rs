//! Test support: a tiny guest that proves no write is lost in a migration.
//!
//! The guest is a 512-byte boot sector (assembled here, byte by byte, with
//! its 8086 mnemonics alongside). Booted by SeaBIOS it loops forever:
//!
//! 1. `n += 1`; write one sector at LBA `1 + (n - 1) % max_lba` holding
//!    `n` (little-endian u32) and the magic `HERD`, through BIOS `int 13h`
//!    extended write (`AH=43h`);
//! 2. once the write returned, print `n` as 8 hex digits and a newline on
//!    COM1, so the serial log holds every write the guest saw complete;
//! 3. wait ~1 ms (`int 15h AH=86h`), so a run of a minute never wraps.
//!
//! After a migration the test stops the guest, reads its disk and checks
//! with [`check_sequence`] that every write up to the last one printed is
//! there: a write lost during the migration leaves a hole.
//!
//! Everything needs only QEMU, SeaBIOS and `qemu-img`, already there for the lab.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;

/// Magic after the counter in every written sector.
pub const MAGIC: &[u8; 4] = b"HERD";

/// Where the data lives inside the sector (offsets from 0x7C00).
const COUNTER: u16 = 0x7C00 + 0x1A0;
const DAP: u16 = 0x7C00 + 0x1B0;
const DAP_LBA: u16 = DAP + 8;
const DRIVE: u16 = 0x7C00 + 0x1C0;
const HEX: u16 = 0x7C00 + 0x1C4;
const BUFFER: u16 = 0x8000;

/// The boot sector. `max_lba` bounds the sectors written (1..=max_lba).
pub fn boot_sector(max_lba: u32) -> [u8; 512] {
    let mut a = Asm::default();
    a.emit(&[0xFA]); // cli
    a.emit(&[0x31, 0xC0]); // xor ax, ax
    a.emit(&[0x8E, 0xD8]); // mov ds, ax
    a.emit(&[0x8E, 0xC0]); // mov es, ax
    a.emit(&[0x8E, 0xD0]); // mov ss, ax
    a.emit(&[0xBC, 0x00, 0x7C]); // mov sp, 0x7C00
    a.emit(&[0xFB]); // sti
    a.emit(&[0x88, 0x16]); // mov [DRIVE], dl
    a.word(DRIVE);

    let top = a.here();
    a.emit(&[0x66, 0xFF, 0x06]); // inc dword [COUNTER]
    a.word(COUNTER);
    a.emit(&[0x66, 0xFF, 0x06]); // inc dword [DAP_LBA]
    a.word(DAP_LBA);
    a.emit(&[0x66, 0x81, 0x3E]); // cmp dword [DAP_LBA], max_lba
    a.word(DAP_LBA);
    a.dword(max_lba);
    a.emit(&[0x76, 0x09]); // jbe +9 (over the next instruction)
    a.emit(&[0x66, 0xC7, 0x06]); // mov dword [DAP_LBA], 1
    a.word(DAP_LBA);
    a.dword(1);
    a.emit(&[0x66, 0xA1]); // mov eax, [COUNTER]
    a.word(COUNTER);
    a.emit(&[0x66, 0xA3]); // mov [BUFFER], eax
    a.word(BUFFER);
    a.emit(&[0x66, 0xC7, 0x06]); // mov dword [BUFFER+4], 'HERD'
    a.word(BUFFER + 4);
    a.emit(MAGIC);
    a.emit(&[0xBE]); // mov si, DAP
    a.word(DAP);
    a.emit(&[0xB8, 0x00, 0x43]); // mov ax, 0x4300 (extended write, no verify)
    a.emit(&[0x8A, 0x16]); // mov dl, [DRIVE]
    a.word(DRIVE);
    a.emit(&[0xCD, 0x13]); // int 13h
    let jc_fail = a.here();
    a.emit(&[0x72, 0x00]); // jc fail (patched below)

    a.emit(&[0x66, 0x8B, 0x3E]); // mov edi, [COUNTER]
    a.word(COUNTER);
    a.emit(&[0xB9, 0x08, 0x00]); // mov cx, 8
    let hex = a.here();
    a.emit(&[0x66, 0xC1, 0xC7, 0x04]); // rol edi, 4
    a.emit(&[0x89, 0xFB]); // mov bx, di
    a.emit(&[0x83, 0xE3, 0x0F]); // and bx, 0x0F
    a.emit(&[0x8A, 0x87]); // mov al, [HEX + bx]
    a.word(HEX);
    let call1 = a.here();
    a.emit(&[0xE8, 0x00, 0x00]); // call putc (patched)
    a.rel8_back(0xE2, hex); // loop hex
    a.emit(&[0xB0, 0x0A]); // mov al, '\n'
    let call2 = a.here();
    a.emit(&[0xE8, 0x00, 0x00]); // call putc (patched)
    a.emit(&[0xB4, 0x86]); // mov ah, 0x86 (wait)
    a.emit(&[0x31, 0xC9]); // xor cx, cx
    a.emit(&[0xBA, 0xE8, 0x03]); // mov dx, 1000 (microseconds)
    a.emit(&[0xCD, 0x15]); // int 15h
    a.jmp_back(top); // jmp top

    let putc = a.here();
    a.emit(&[0x88, 0xC4]); // mov ah, al
    a.emit(&[0xBA, 0xFD, 0x03]); // mov dx, 0x3FD (line status)
    a.emit(&[0xEC]); // in al, dx
    a.emit(&[0xA8, 0x20]); // test al, 0x20 (transmitter empty)
    a.emit(&[0x74, 0xFB]); // jz -5 (back to `in`)
    a.emit(&[0x88, 0xE0]); // mov al, ah
    a.emit(&[0xBA, 0xF8, 0x03]); // mov dx, 0x3F8
    a.emit(&[0xEE]); // out dx, al
    a.emit(&[0xC3]); // ret

    let fail = a.here();
    a.emit(&[0xB0, b'!']); // mov al, '!'
    let call3 = a.here();
    a.emit(&[0xE8, 0x00, 0x00]); // call putc
    a.emit(&[0xF4]); // hlt
    a.emit(&[0xEB, 0xFD]); // jmp -3 (back to hlt)

    a.patch_rel8(jc_fail, fail);
    for call in [call1, call2, call3] {
        a.patch_rel16(call, putc);
    }

    let mut sector = [0u8; 512];
    assert!(a.bytes.len() <= 0x1A0, "boot code overlaps its data");
    sector[..a.bytes.len()].copy_from_slice(&a.bytes);
    // Disk address packet: size 16, 1 sector, buffer 0000:8000, LBA 0.
    let dap = usize::from(DAP - 0x7C00);
    sector[dap] = 0x10;
    sector[dap + 2] = 1;
    sector[dap + 4..dap + 6].copy_from_slice(&BUFFER.to_le_bytes());
    let hex_at = usize::from(HEX - 0x7C00);
    sector[hex_at..hex_at + 16].copy_from_slice(b"0123456789abcdef");
    sector[510] = 0x55;
    sector[511] = 0xAA;
    sector
}

/// Just enough of an assembler: bytes, and jumps patched by position.
#[derive(Default)]
struct Asm {
    bytes: Vec<u8>,
}

impl Asm {
    fn here(&self) -> usize {
        self.bytes.len()
    }
    fn emit(&mut self, b: &[u8]) {
        self.bytes.extend_from_slice(b);
    }
    fn word(&mut self, w: u16) {
        self.emit(&w.to_le_bytes());
    }
    fn dword(&mut self, d: u32) {
        self.emit(&d.to_le_bytes());
    }
    /// A two-byte jump (`opcode rel8`) back to `target`.
    fn rel8_back(&mut self, opcode: u8, target: usize) {
        let rel = target as isize - (self.here() as isize + 2);
        self.emit(&[opcode, rel as i8 as u8]);
    }
    /// `jmp rel16` back to `target`.
    fn jmp_back(&mut self, target: usize) {
        let rel = target as isize - (self.here() as isize + 3);
        self.emit(&[0xE9]);
        self.word(rel as i16 as u16);
    }
    /// Patch the rel8 of the 2-byte instruction at `at` to jump to `target`.
    fn patch_rel8(&mut self, at: usize, target: usize) {
        let rel = target as isize - (at as isize + 2);
        self.bytes[at + 1] = rel as i8 as u8;
    }
    /// Patch the rel16 of the 3-byte instruction at `at`.
    fn patch_rel16(&mut self, at: usize, target: usize) {
        let rel = (target as isize - (at as isize + 3)) as i16;
        self.bytes[at + 1..at + 3].copy_from_slice(&rel.to_le_bytes());
    }
}

/// One disk of a test domain.
pub struct TestDisk<'a> {
    pub target: &'a str,
    /// Path as the host sees it (`/var/lib/libvirt/images/x.qcow2`).
    pub path: &'a str,
    pub format: &'a str,
}

/// A TCG domain with the given disks (the first boots), no network, and
/// COM1 appended to `serial_log` when given.
pub fn domain_xml(
    name: &str,
    memory_mib: u64,
    disks: &[TestDisk],
    serial_log: Option<&Path>,
) -> String {
    let mut devices = String::new();
    for d in disks {
        devices.push_str(&format!(
            "<disk type='file' device='disk'><driver name='qemu' type='{}'/>\
             <source file='{}'/><target dev='{}' bus='virtio'/></disk>",
            d.format, d.path, d.target
        ));
    }
    if let Some(log) = serial_log {
        devices.push_str(&format!(
            "<serial type='file'><source path='{}' append='on'/><target port='0'/></serial>",
            log.display()
        ));
    }
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>{memory_mib}</memory>\
         <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>\
         <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>{devices}\
         <memballoon model='none'/></devices></domain>"
    )
}

/// Write a qcow2 image at `path` (a path on this machine) of `size` bytes
/// whose first sector is `boot` (if any), with `data_mib` MiB of
/// pseudo-random data from 1 MiB on, so that copying it takes time.
pub fn make_qcow2(
    path: &Path,
    size: u64,
    boot: Option<&[u8; 512]>,
    data_mib: u64,
) -> std::io::Result<()> {
    let raw = path.with_extension("raw-tmp");
    {
        let mut f = std::fs::File::create(&raw)?;
        f.set_len(size)?;
        use std::io::Write;
        if let Some(b) = boot {
            f.write_all(b)?;
        }
        f.seek(SeekFrom::Start(1 << 20))?;
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..data_mib {
            for b in chunk.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.copy_from_slice(&x.to_le_bytes());
            }
            f.write_all(&chunk)?;
        }
    }
    let status = Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(path)
        .status();
    let _ = std::fs::remove_file(&raw);
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(std::io::Error::other(format!(
            "qemu-img convert exited with {s}"
        ))),
        Err(e) => Err(e),
    }
}

/// The guest's view of a disk image (any format QEMU reads), as raw bytes.
pub fn read_guest_view(image: &Path, format: &str) -> std::io::Result<Vec<u8>> {
    let raw = image.with_extension("view-tmp");
    let status = Command::new("qemu-img")
        .args(["convert", "-q", "-U", "-f", format, "-O", "raw"])
        .arg(image)
        .arg(&raw)
        .status()?;
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "qemu-img convert exited with {status}"
        )));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(&raw)?.read_to_end(&mut bytes)?;
    let _ = std::fs::remove_file(&raw);
    Ok(bytes)
}

/// The last write the guest reported complete on its serial log.
pub fn last_reported(serial_log: &str) -> Option<u32> {
    serial_log
        .lines()
        .filter(|l| l.len() == 8)
        .filter_map(|l| u32::from_str_radix(l, 16).ok())
        .max()
}

/// Check that `disk` (the guest's view) holds every write `1..=last`, each
/// at its sector. Returns the number of the first write that is missing.
pub fn check_sequence(disk: &[u8], max_lba: u32, last: u32) -> Result<(), u32> {
    let first = last.saturating_sub(max_lba).max(1);
    for n in first..=last {
        let lba = 1 + (n - 1) % max_lba;
        let at = lba as usize * 512;
        let Some(sector) = disk.get(at..at + 8) else {
            return Err(n);
        };
        if sector[..4] != n.to_le_bytes() && !newer_at(sector, n, max_lba) {
            return Err(n);
        }
        if &sector[4..8] != MAGIC {
            return Err(n);
        }
    }
    Ok(())
}

/// After a wrap, a later write may have replaced `n` at the same sector.
fn newer_at(sector: &[u8], n: u32, max_lba: u32) -> bool {
    let found = u32::from_le_bytes([sector[0], sector[1], sector[2], sector[3]]);
    found > n && (found - n).is_multiple_of(max_lba)
}

/// The directory of the `default` pool test guests live in.
pub const IMAGES: &str = "/var/lib/libvirt/images";
/// The sectors the guests of [`create_guest`] write (1..=MAX_LBA).
pub const MAX_LBA: u32 = 100_000;

/// Define, start and autostart a `default` dir pool at [`IMAGES`] on `uri`
/// (what `herd hv bootstrap` does, for tests that do not need the rest).
pub fn ensure_default_pool(uri: &str) -> Result<(), virt::error::Error> {
    let conn = crate::libvirt::open(uri)?;
    let pool = match conn.lookup_storage_pool_by_name("default") {
        Ok(p) => p,
        Err(_) => conn.define_storage_pool_xml(
            &format!(
                "<pool type='dir'><name>default</name><target><path>{IMAGES}</path></target></pool>"
            ),
            0,
        )?,
    };
    if !pool.is_active()? {
        pool.create(0)?;
    }
    pool.set_autostart(true)
}

/// One disk of [`create_guest`]: device, size and MiB of data to fill in.
pub struct GuestDisk<'a> {
    pub target: &'a str,
    pub size_mib: u64,
    pub data_mib: u64,
}

/// Create the disks (`NAME-TARGET.qcow2` in the `default` pool, the first
/// one holding the writer's boot sector) and define the guest on `uri`;
/// start it when `start`. `outside` maps a host path to this machine's.
pub fn create_guest(
    uri: &str,
    name: &str,
    disks: &[GuestDisk],
    outside: impl Fn(&str) -> Option<std::path::PathBuf>,
    serial_log: &Path,
    start: bool,
) -> Result<(), String> {
    let boot = boot_sector(MAX_LBA);
    let mut paths = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        let path = format!("{IMAGES}/{name}-{}.qcow2", d.target);
        let local = outside(&path).ok_or_else(|| format!("no local path for {path}"))?;
        make_qcow2(
            &local,
            d.size_mib << 20,
            (i == 0).then_some(&boot),
            d.data_mib,
        )
        .map_err(|e| format!("create {}: {e}", local.display()))?;
        paths.push((d.target, path));
    }
    let conn = crate::libvirt::open(uri).map_err(|e| e.to_string())?;
    conn.lookup_storage_pool_by_name("default")
        .and_then(|p| p.refresh(0))
        .map_err(|e| e.to_string())?;
    let test_disks: Vec<TestDisk> = paths
        .iter()
        .map(|(t, p)| TestDisk {
            target: t,
            path: p,
            format: "qcow2",
        })
        .collect();
    let dom = conn
        .define_domain_xml(&domain_xml(name, 32, &test_disks, Some(serial_log)))
        .map_err(|e| e.to_string())?;
    if start {
        dom.create().map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_sector_is_bootable_and_fits() {
        let s = boot_sector(1000);
        assert_eq!(&s[510..], &[0x55, 0xAA]);
        assert_eq!(s[0x1B0], 0x10, "disk address packet in place");
        assert_eq!(&s[0x1C4..0x1D4], b"0123456789abcdef");
    }

    #[test]
    fn sequence_with_a_hole_is_caught() {
        let mut disk = vec![0u8; 512 * 11];
        for n in 1..=10u32 {
            let at = n as usize * 512;
            disk[at..at + 4].copy_from_slice(&n.to_le_bytes());
            disk[at + 4..at + 8].copy_from_slice(MAGIC);
        }
        assert_eq!(check_sequence(&disk, 10, 10), Ok(()));
        disk[7 * 512..7 * 512 + 8].fill(0);
        assert_eq!(check_sequence(&disk, 10, 10), Err(7));
        assert_eq!(check_sequence(&disk, 10, 6), Ok(()));
    }

    #[test]
    fn serial_log_gives_the_last_completed_write() {
        assert_eq!(last_reported("00000001\n00000002\n0000000a\n000"), Some(10));
        assert_eq!(last_reported(""), None);
    }
}
