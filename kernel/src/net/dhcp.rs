//! The interface's address: DHCP, falling back to QEMU user networking's
//! usual `10.0.2.15/24` via `10.0.2.2` when no lease comes in time.
//!
//! The first address the interface gets is reported in one boot line,
//! `net: up ADDRESS gateway GATEWAY (how) N ms after power-on`, which the
//! system tests wait for.

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::wire::{IpCidr, Ipv4Address, Ipv4Cidr};

use crate::kprintln;

/// How long DHCP has before the static address is used.
const FALLBACK_AFTER_MS: u64 = 3_000;
const FALLBACK_ADDRESS: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24);
const FALLBACK_GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);

/// The DHCP client and the fallback timer.
pub struct Dhcp {
    handle: SocketHandle,
    /// When the fallback applies (ms since power-on), until configured.
    fallback_at: Option<u64>,
    /// The boot line was printed.
    reported: bool,
    /// The address in use came from a DHCP lease.
    leased: bool,
}

impl Dhcp {
    /// Starts a DHCP client on `sockets`; the fallback applies
    /// [`FALLBACK_AFTER_MS`] after `now` (ms since power-on).
    pub fn new(sockets: &mut SocketSet<'static>, now: u64) -> Self {
        let handle = sockets.add(dhcpv4::Socket::new());
        Self {
            handle,
            fallback_at: Some(now.saturating_add(FALLBACK_AFTER_MS)),
            reported: false,
            leased: false,
        }
    }

    /// Applies what the DHCP client learnt, or the fallback when it is due.
    /// Returns when the fallback is due, if it still is pending.
    pub fn poll(
        &mut self,
        iface: &mut Interface,
        sockets: &mut SocketSet<'static>,
        now: u64,
    ) -> Option<u64> {
        let event = sockets.get_mut::<dhcpv4::Socket>(self.handle).poll();
        match event {
            Some(dhcpv4::Event::Configured(config)) => {
                self.apply(iface, config.address, config.router, "DHCP", now);
                self.leased = true;
            }
            // The client also reports this when it starts, with no lease.
            Some(dhcpv4::Event::Deconfigured) if self.leased => {
                kprintln!("net: the DHCP lease is gone; using the static address");
                self.leased = false;
                self.fallback_at = Some(now);
            }
            Some(dhcpv4::Event::Deconfigured) | None => {}
        }
        if let Some(at) = self.fallback_at
            && now >= at
        {
            self.apply(
                iface,
                FALLBACK_ADDRESS,
                Some(FALLBACK_GATEWAY),
                "static: no DHCP lease",
                now,
            );
        }
        self.fallback_at
    }

    fn apply(
        &mut self,
        iface: &mut Interface,
        address: Ipv4Cidr,
        gateway: Option<Ipv4Address>,
        how: &str,
        now: u64,
    ) {
        self.fallback_at = None;
        iface.update_ip_addrs(|addrs| {
            addrs.clear();
            let _ = addrs.push(IpCidr::Ipv4(address));
        });
        let routes = iface.routes_mut();
        routes.remove_default_ipv4_route();
        if let Some(gateway) = gateway {
            let _ = routes.add_default_ipv4_route(gateway);
        }
        let gateway = gateway.unwrap_or(Ipv4Address::UNSPECIFIED);
        if !super::UP.swap(true, core::sync::atomic::Ordering::Relaxed) {
            super::UP_CHANGED.store(true, core::sync::atomic::Ordering::Relaxed);
        }
        if self.reported {
            kprintln!("net: address now {address} gateway {gateway} ({how})");
        } else {
            self.reported = true;
            kprintln!("net: up {address} gateway {gateway} ({how}) {now} ms after power-on");
        }
    }
}
