//! virtio over MMIO: the transports QEMU `virt` places in its `virtio,mmio`
//! slots, and the [`Hal`] the `virtio-drivers` crate needs.
//!
//! A slot is claimed once ([`claim`]), like the GIC and the UART, so the
//! "nothing else uses these registers" half of the MMIO contract is checked
//! here rather than promised by every caller.
//!
//! DMA memory is the kernel heap: the kernel identity-maps RAM (virtual ==
//! physical, `mmu.rs`), so a heap block's address is the address the device
//! uses, and QEMU's DMA is coherent with normal cacheable memory. The
//! [`Hal`] allocates through `alloc::alloc` (the global allocator) rather
//! than through `crate::heap`, which sits above `arch`: **the caller sets
//! the scope**. Every call into a virtio driver that can allocate
//! (construction, and the net driver's receive buffers and transmit copies)
//! must run inside the scope whose account should pay, the kernel's
//! (`crate::heap::as_kernel`, or a kernel thread). Allocation failure in a
//! kernel scope is forced by `quota` rather than refused; past the
//! overdraft it is `handle_alloc_error`.

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PAGE_SIZE, PhysAddr};

use super::mmu;

/// The kernel's `virtio-drivers` HAL: DMA from the heap, identity-mapped.
pub struct KernelHal;

/// A claimed virtio MMIO transport.
pub type Mmio = MmioTransport<'static>;

/// Most virtio MMIO slots the kernel tracks (QEMU `virt` has 32).
pub const MAX_SLOTS: usize = 32;

static CLAIMED: [AtomicUsize; MAX_SLOTS] = [const { AtomicUsize::new(0) }; MAX_SLOTS];

fn dma_layout(pages: usize) -> Option<Layout> {
    Layout::from_size_align(pages.checked_mul(PAGE_SIZE)?, PAGE_SIZE).ok()
}

/// The transport of the virtio device of type `wanted` at `base` (`size`
/// bytes of registers, from the device tree): `None` if the slot is empty,
/// holds another kind of device, lies outside the device map, or was
/// claimed before.
pub fn claim(base: usize, size: usize, wanted: DeviceType) -> Option<Mmio> {
    let end = base.checked_add(size)?;
    if base == 0 || !mmu::is_device(base) || !mmu::is_device(end - 1) {
        return None;
    }
    if !base.is_multiple_of(4) || size < size_of::<VirtIOHeader>() {
        return None;
    }
    if CLAIMED.iter().any(|c| c.load(Ordering::Acquire) == base) {
        return None;
    }
    let slot = CLAIMED.iter().find(|c| {
        c.compare_exchange(0, base, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    })?;
    let header = NonNull::new(base as *mut VirtIOHeader)?;
    // SAFETY: `base..base + size` is a 4-aligned block of device memory in
    // the identity map (checked above) that the device tree names as a
    // virtio MMIO slot, header and config space; `CLAIMED` makes this the
    // only transport built for it while it is claimed, and device memory is
    // mapped for as long as the kernel runs (`'static`).
    let transport = unsafe { MmioTransport::new(header, size) }.ok();
    match transport {
        Some(t) if t.device_type() == wanted => Some(t),
        other => {
            // Dropping a transport only resets its device; then the slot is
            // free again.
            drop(other);
            slot.store(0, Ordering::Release);
            None
        }
    }
}

// SAFETY: `dma_alloc` returns zeroed, page-aligned heap blocks that are
// not aliased until `dma_dealloc` frees them; physical == virtual for all
// RAM (the identity map), so the addresses handed to the device are right;
// `share` hands out the buffer's own address and the device's DMA is
// cache-coherent on QEMU, so nothing needs copying back in `unshare`.
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Some(layout) = dma_layout(pages.max(1)) else {
            panic!("virtio: a DMA allocation of {pages} pages overflows");
        };
        // SAFETY: `layout` has a non-zero size (at least one page).
        let block = unsafe { alloc::alloc::alloc_zeroed(layout) };
        let Some(block) = NonNull::new(block) else {
            alloc::alloc::handle_alloc_error(layout);
        };
        (block.as_ptr() as PhysAddr, block)
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let Some(layout) = dma_layout(pages.max(1)) else {
            return -1;
        };
        // SAFETY: the caller passes back a block `dma_alloc` returned for
        // the same number of pages, so it was allocated with `layout`.
        unsafe { alloc::alloc::dealloc(vaddr.as_ptr(), layout) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // Only the PCI transport asks; the identity map makes it the same.
        let addr = usize::try_from(paddr).unwrap_or(0);
        NonNull::new(addr as *mut u8).expect("virtio: MMIO at address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.cast::<u8>().as_ptr() as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}
