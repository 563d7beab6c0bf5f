//! smoltcp's [`Device`] over the virtio-net driver.
//!
//! Receive copies each frame out of the driver's buffer into one scratch
//! buffer and gives the driver's buffer straight back to the device, so the
//! receive queue is always full and smoltcp borrows nothing of the driver.
//! Transmit hands the driver one freshly allocated frame per packet; the
//! driver waits for the device to take it (QEMU does at once).
//!
//! Every allocation here happens on the network thread, in the kernel's
//! scope (see `arch::virtio`: the caller of the driver sets the scope).

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use virtio_drivers::device::net::VirtIONet;

use crate::arch::virtio::{KernelHal, Mmio};

/// Descriptors in each virtqueue.
const QUEUE_SIZE: usize = 16;
/// Bytes of each receive buffer: an Ethernet frame and the virtio header.
const RX_BUFFER: usize = 2048;
/// Largest Ethernet frame, without the FCS.
const MTU: usize = 1514;

/// The virtio-net driver.
pub type Nic = VirtIONet<KernelHal, Mmio, QUEUE_SIZE>;

/// A virtio-net card as smoltcp sees it.
pub struct NetDevice {
    nic: Nic,
    rx: Vec<u8>,
}

impl NetDevice {
    /// Starts the driver on `transport`, its receive queue filled.
    ///
    /// # Errors
    /// The driver's, if the device cannot be set up.
    pub fn new(transport: Mmio) -> Result<Self, virtio_drivers::Error> {
        let mut nic = Nic::new(transport, RX_BUFFER)?;
        nic.enable_interrupts();
        Ok(Self {
            nic,
            rx: vec![0; RX_BUFFER],
        })
    }

    /// The card's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.nic.mac_address()
    }

    /// Whether a received frame waits in the receive queue.
    pub fn has_frame(&self) -> bool {
        self.nic.can_recv()
    }

    /// Acknowledges the card's interrupt (it is level-triggered).
    pub fn ack_interrupt(&mut self) {
        let _ = self.nic.ack_interrupt();
    }
}

/// A received frame, borrowed from the scratch buffer.
pub struct Rx<'a>(&'a [u8]);

/// Room for one frame to send.
pub struct Tx<'a>(&'a mut Nic);

impl RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = self.0.new_tx_buffer(len);
        let result = f(frame.packet_mut());
        // A frame the device refuses is a lost packet; TCP retransmits.
        let _ = self.0.send(frame);
        result
    }
}

impl Device for NetDevice {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let frame = self.nic.receive().ok()?;
        let len = frame.packet_len().min(self.rx.len());
        self.rx[..len].copy_from_slice(&frame.packet()[..len]);
        // Giving a buffer back fails only on a driver bug; the queue then
        // runs one buffer short.
        let _ = self.nic.recycle_rx_buffer(frame);
        Some((Rx(&self.rx[..len]), Tx(&mut self.nic)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        self.nic.can_send().then_some(Tx(&mut self.nic))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = Some(QUEUE_SIZE);
        caps
    }
}
