//! The few libvirt calls herd-migrate needs that the `virt` crate does not
//! wrap (abort a job, compare a CPU, sparse streams), and small helpers over
//! the ones it does.

use crate::facts::{CpuVerdict, VmState};
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_longlong};
use std::sync::atomic::{AtomicBool, Ordering};
use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::enumutil::Enum;
use virt::error::{Error, ErrorNumber};
use virt::storage_vol::StorageVol;
use virt::stream::Stream;
use virt::sys;

/// Open a read-write connection. libvirt's default error printer is turned
/// off once: herd reports errors itself.
pub fn open(uri: &str) -> Result<Connect, Error> {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(virt::error::clear_error_callback);
    Connect::open(Some(uri))
}

pub fn vm_state(dom: &Domain) -> Result<VmState, Error> {
    let (state, _) = dom.state()?;
    Ok(match state {
        Enum::Known(DomainState::Running | DomainState::Blocked) => VmState::Running,
        Enum::Known(DomainState::Paused) => VmState::Paused,
        Enum::Known(DomainState::Shutoff) => VmState::ShutOff,
        _ => VmState::Other,
    })
}

/// The error says the domain (or volume) does not exist.
pub fn is_missing(e: &Error) -> bool {
    matches!(
        e.code(),
        Enum::Known(ErrorNumber::NoDomain | ErrorNumber::NoStorageVolume)
    )
}

/// `virDomainAbortJob`: ask libvirt to cancel the running migration.
pub fn abort_job(dom: &Domain) -> Result<(), Error> {
    // SAFETY: `dom` holds a valid reference for the duration of the call.
    let rc = unsafe { sys::virDomainAbortJob(dom.as_ptr()) };
    if rc < 0 {
        return Err(Error::last_error());
    }
    Ok(())
}

/// Whether libvirt reports any job running on the domain.
pub fn job_active(dom: &Domain) -> Result<bool, Error> {
    Ok(dom.job_info()?.r#type != sys::VIR_DOMAIN_JOB_NONE as i32)
}

/// `virConnectCompareHypervisorCPU` of a domain's `<cpu>` on `conn`.
pub fn compare_cpu(
    conn: &Connect,
    emulator: Option<&str>,
    arch: &str,
    machine: Option<&str>,
    virt_type: &str,
    cpu_xml: &str,
) -> CpuVerdict {
    let to_c = |s: &str| CString::new(s).ok();
    let (Some(arch), Some(virt_type), Some(cpu)) = (to_c(arch), to_c(virt_type), to_c(cpu_xml))
    else {
        return CpuVerdict::Unknown {
            detail: "NUL byte in the domain XML".into(),
        };
    };
    let emulator = emulator.and_then(to_c);
    let machine = machine.and_then(to_c);
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is a valid NUL-terminated string or null, alive
    // for the call; `conn` is a valid connection.
    let rc = unsafe {
        sys::virConnectCompareHypervisorCPU(
            conn.as_ptr(),
            ptr(&emulator),
            arch.as_ptr(),
            ptr(&machine),
            virt_type.as_ptr(),
            cpu.as_ptr() as *const c_char,
            0,
        )
    };
    match rc {
        sys::VIR_CPU_COMPARE_IDENTICAL => CpuVerdict::Identical,
        sys::VIR_CPU_COMPARE_SUPERSET => CpuVerdict::Superset,
        sys::VIR_CPU_COMPARE_INCOMPATIBLE => CpuVerdict::Incompatible {
            detail: "libvirt: the host CPU lacks features the VM's CPU model needs".into(),
        },
        _ => CpuVerdict::Unknown {
            detail: Error::last_error().message().to_string(),
        },
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Libvirt(#[from] Error),
    #[error("the copy was interrupted")]
    Cancelled,
}

/// Copy one volume's bytes to another through libvirt storage streams,
/// skipping holes (sparse both ways). Returns the data bytes sent. Stops with
/// an error when `cancel` is set.
pub fn sparse_copy(
    src_conn: &Connect,
    src: &StorageVol,
    dst_conn: &Connect,
    dst: &StorageVol,
    cancel: &AtomicBool,
) -> Result<u64, CopyError> {
    let down = Stream::new(src_conn, 0)?;
    let up = Stream::new(dst_conn, 0)?;
    src.download(&down, 0, 0, sys::VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM)?;
    if let Err(e) = dst.upload(&up, 0, 0, sys::VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM) {
        let _ = down.abort();
        return Err(e.into());
    }
    let result = pump(&down, &up, cancel);
    match result {
        Ok(bytes) => {
            down.finish()?;
            up.finish()?;
            Ok(bytes)
        }
        Err(e) => {
            let _ = down.abort();
            let _ = up.abort();
            Err(e)
        }
    }
}

fn pump(down: &Stream, up: &Stream, cancel: &AtomicBool) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut sent = 0u64;
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(CopyError::Cancelled);
        }
        // SAFETY: `buf` is valid for `buf.len()` bytes; the streams are alive.
        let n = unsafe {
            sys::virStreamRecvFlags(
                down.as_ptr(),
                buf.as_mut_ptr() as *mut c_char,
                buf.len(),
                sys::VIR_STREAM_RECV_STOP_AT_HOLE,
            )
        };
        match n {
            0 => return Ok(sent),
            -3 => {
                let mut len: c_longlong = 0;
                // SAFETY: `len` is a valid out pointer.
                if unsafe { sys::virStreamRecvHole(down.as_ptr(), &mut len, 0) } < 0 {
                    return Err(Error::last_error().into());
                }
                // SAFETY: the upload stream is alive.
                if unsafe { sys::virStreamSendHole(up.as_ptr(), len, 0) } < 0 {
                    return Err(Error::last_error().into());
                }
            }
            n if n < 0 => return Err(Error::last_error().into()),
            n => {
                let mut chunk = &buf[..n as usize];
                while !chunk.is_empty() {
                    let w = up.send(chunk)?;
                    chunk = &chunk[w as usize..];
                }
                sent += n as u64;
            }
        }
    }
}

/// `c_int` flags for set/get metadata on the live and/or persistent domain.
pub fn affect(active: bool, persistent: bool) -> u32 {
    let mut f = 0;
    if active {
        f |= sys::VIR_DOMAIN_AFFECT_LIVE;
    }
    if persistent {
        f |= sys::VIR_DOMAIN_AFFECT_CONFIG;
    }
    f as c_int as u32
}

/// The job statistics herd uses (all bytes, milliseconds or bytes/s).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSample {
    pub active: bool,
    pub data_processed: u64,
    pub disk_total: u64,
    pub disk_processed: u64,
    pub disk_remaining: u64,
    pub disk_bps: u64,
    pub mem_total: u64,
    pub mem_processed: u64,
    pub mem_remaining: u64,
    pub mem_bps: u64,
    pub time_elapsed: u64,
    pub downtime: Option<u64>,
}

/// `virDomainGetJobStats`, read directly: the `virt` crate's wrapper builds
/// a `Vec` from a null pointer when no job runs.
pub fn job_stats(dom: &Domain, flags: u32) -> Result<JobSample, Error> {
    let mut kind: c_int = 0;
    let mut params: sys::virTypedParameterPtr = std::ptr::null_mut();
    let mut n: c_int = 0;
    // SAFETY: out pointers are valid; libvirt allocates `params`.
    let rc =
        unsafe { sys::virDomainGetJobStats(dom.as_ptr(), &mut kind, &mut params, &mut n, flags) };
    if rc < 0 {
        return Err(Error::last_error());
    }
    let mut s = JobSample {
        active: kind != sys::VIR_DOMAIN_JOB_NONE as c_int,
        ..JobSample::default()
    };
    if params.is_null() || n <= 0 {
        return Ok(s);
    }
    // SAFETY: libvirt returned `n` initialized parameters at `params`.
    let slice = unsafe { std::slice::from_raw_parts(params, n as usize) };
    for p in slice {
        // SAFETY: `field` is a NUL-terminated C string inside the struct.
        let field = unsafe { std::ffi::CStr::from_ptr(p.field.as_ptr()) };
        let value = match p.type_ as u32 {
            // SAFETY: the union member matches the declared type.
            sys::VIR_TYPED_PARAM_ULLONG => unsafe { p.value.ul },
            sys::VIR_TYPED_PARAM_LLONG => unsafe { p.value.l.max(0) as u64 },
            sys::VIR_TYPED_PARAM_UINT => unsafe { u64::from(p.value.ui) },
            sys::VIR_TYPED_PARAM_INT => unsafe { p.value.i.max(0) as u64 },
            _ => continue,
        };
        match field.to_bytes() {
            b"data_processed" => s.data_processed = value,
            b"disk_total" => s.disk_total = value,
            b"disk_processed" => s.disk_processed = value,
            b"disk_remaining" => s.disk_remaining = value,
            b"disk_bps" => s.disk_bps = value,
            b"memory_total" => s.mem_total = value,
            b"memory_processed" => s.mem_processed = value,
            b"memory_remaining" => s.mem_remaining = value,
            b"memory_bps" => s.mem_bps = value,
            b"time_elapsed" => s.time_elapsed = value,
            b"downtime" => s.downtime = Some(value),
            _ => {}
        }
    }
    // SAFETY: `params`/`n` came from virDomainGetJobStats.
    unsafe { sys::virTypedParamsFree(params, n) };
    Ok(s)
}
