//! Physical memory the kernel hands out: the device tree QEMU left in RAM,
//! and the RAM after the kernel image, which becomes the heap.
//!
//! Both are handed out once, as safe values (a `'static` slice, a claimed
//! heap), so nothing above `arch` needs a raw pointer to use them.

use core::ops::Range;
use core::sync::atomic::{AtomicBool, Ordering};

use super::mmu;

unsafe extern "C" {
    /// End of the kernel image (linker script), page aligned.
    static __kernel_end: u8;
}

/// Where QEMU `virt` puts the device tree: the start of RAM. QEMU 7.2
/// (Debian 12's) leaves x0 = 0 when it boots an ELF, so the kernel looks
/// here when x0 does not say.
const DTB_AT_RAM_START: usize = 0x4000_0000;

/// The flattened device tree's magic number (big-endian in memory).
const FDT_MAGIC: u32 = 0xd00d_feed;

/// Largest device tree believed (QEMU's are about 1 MiB).
const FDT_MAX: usize = 2 << 20;

/// The device tree at `x0` (or at the start of RAM if `x0` is 0), as a
/// slice: `None` if no valid header is there.
///
/// Called once, by the boot path, before anything can write RAM below the
/// kernel image.
pub(super) fn device_tree(x0: usize) -> Option<&'static [u8]> {
    let at = if x0 == 0 { DTB_AT_RAM_START } else { x0 };
    if at % 8 != 0 || mmu::is_device(at) || at >= mmu::MAPPED_END {
        return None;
    }
    let header = at as *const [u32; 2];
    // SAFETY: `at` is 8-aligned normal memory inside the identity map
    // (checked above), so the two header words are readable; QEMU wrote
    // the device tree there before the kernel started, and nothing writes it.
    let [magic, total] = unsafe { header.read() };
    let total = u32::from_be(total) as usize;
    if u32::from_be(magic) != FDT_MAGIC || !(40..=FDT_MAX).contains(&total) {
        return None;
    }
    // SAFETY: the header says the blob is `total` bytes long (bounded
    // above); QEMU placed it in RAM below the kernel image, which the heap
    // never covers, and nothing ever writes it, so a shared `'static`
    // borrow is sound.
    Some(unsafe { core::slice::from_raw_parts(at as *const u8, total) })
}

/// Where the kernel image ends.
pub fn kernel_end() -> usize {
    (&raw const __kernel_end) as usize
}

/// Why the heap region could not be had.
#[derive(Debug)]
pub enum HeapRegionError {
    /// It was already claimed.
    Claimed,
    /// `bytes` do not fit in RAM (and the identity map) after the kernel.
    DoesNotFit {
        /// Bytes asked for.
        bytes: usize,
        /// End of RAM.
        ram_end: usize,
    },
    /// The allocator refused the region.
    Refused,
}

impl core::fmt::Display for HeapRegionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HeapRegionError::Claimed => f.write_str("the heap region was already claimed"),
            HeapRegionError::DoesNotFit { bytes, ram_end } => write!(
                f,
                "heap={bytes} does not fit in RAM after the kernel (RAM ends {ram_end:#x})"
            ),
            HeapRegionError::Refused => f.write_str("talc could not claim the heap region"),
        }
    }
}

static HEAP_CLAIMED: AtomicBool = AtomicBool::new(false);

/// Gives `bytes` of RAM right after the kernel image (page aligned) to
/// `talc`, once, and returns the region.
///
/// # Errors
/// [`HeapRegionError`]; then nothing was claimed.
pub fn claim_heap<R: talc::lock_api::RawMutex, S: talc::source::Source>(
    talc: &talc::TalcLock<R, S>,
    bytes: usize,
    ram: &Range<usize>,
) -> Result<Range<usize>, HeapRegionError> {
    let base = kernel_end().next_multiple_of(4096);
    let end = base
        .checked_add(bytes)
        .filter(|end| *end <= ram.end.min(mmu::MAPPED_END) && base >= ram.start)
        .ok_or(HeapRegionError::DoesNotFit {
            bytes,
            ram_end: ram.end,
        })?;
    if HEAP_CLAIMED.swap(true, Ordering::AcqRel) {
        return Err(HeapRegionError::Claimed);
    }
    // SAFETY: `base..end` is RAM after the kernel image (its stacks and
    // `.bss` included) and inside the identity map, as checked; the device
    // tree lies below the image; `HEAP_CLAIMED` makes this the only claim,
    // so the allocator owns the region for good.
    unsafe { talc.lock().claim(base as *mut u8, bytes) }.ok_or(HeapRegionError::Refused)?;
    Ok(base..end)
}
