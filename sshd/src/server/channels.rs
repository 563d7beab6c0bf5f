//! The connection layer (RFC 4254) of [`Connection`]: channel open and
//! close, requests, data in both directions, window credit, and the exit
//! sequence (exit-status or exit-signal, EOF, CLOSE).

use alloc::string::String;
use alloc::vec::Vec;

use sunset::packets::{ChannelOpenType, ChannelReqType, Packet, ParseContext};
use sunset::sshnames::SSH_EXTENDED_DATA_STDERR;

use super::{Connection, Disconnect, Event, Host, INTR, MAX_ENV, m, reason};
use crate::auth;
use crate::channel::{Channel, ChannelId, Command, Exit, Phase, Pty};
use crate::wire::codec::{Reader, put_string, put_u32};

impl Connection {
    pub(super) fn on_connection(
        &mut self,
        p: &[u8],
        host: &mut (impl Host + ?Sized),
    ) -> Result<(), Disconnect> {
        match p[0] {
            auth::MSG_REQUEST | m::SUCCESS | m::FAILURE => Ok(()),
            m::GLOBAL_REQUEST => {
                let mut r = Reader::new(p);
                let _ = r.u8();
                let want_reply = r.string().and_then(|_| r.bool());
                match want_reply {
                    Some(true) => {
                        self.send(&[m::REQUEST_FAILURE]);
                        Ok(())
                    }
                    Some(false) => Ok(()),
                    None => Err(self.fail(reason::PROTOCOL_ERROR, "malformed global request")),
                }
            }
            m::CHANNEL_OPEN
            | m::WINDOW_ADJUST
            | m::DATA
            | m::EXTENDED_DATA
            | m::EOF
            | m::CLOSE
            | m::REQUEST => self.on_channel(p, host),
            _ => {
                // RFC 4253 §11.4: answer unknown messages with UNIMPLEMENTED.
                let mut r = alloc::vec![m::UNIMPLEMENTED];
                put_u32(&mut r, self.dec.seq().wrapping_sub(1));
                self.send(&r);
                Ok(())
            }
        }
    }

    fn on_channel(&mut self, p: &[u8], host: &mut (impl Host + ?Sized)) -> Result<(), Disconnect> {
        let ctx = ParseContext::new();
        let Ok(packet) = sunset::sshwire::packet_from_bytes(p, &ctx) else {
            return Err(self.fail(reason::PROTOCOL_ERROR, "malformed channel message"));
        };
        match packet {
            Packet::ChannelOpen(o) => {
                self.on_open(o.sender_num, o.initial_window, o.max_packet, &o.ty, host);
                Ok(())
            }
            Packet::ChannelWindowAdjust(a) => {
                let c = self.lookup(a.num)?;
                let w = c.peer_window.saturating_add(a.adjust as usize);
                if w > u32::MAX as usize {
                    return Err(self.fail(reason::PROTOCOL_ERROR, "window adjust overflow"));
                }
                c.peer_window = w;
                Ok(())
            }
            Packet::ChannelData(d) => self.on_data(d.num, d.data.0, false, host),
            Packet::ChannelDataExt(d) => self.on_data(d.num, d.data.0, true, host),
            Packet::ChannelEof(e) => {
                let c = self.lookup(e.num)?;
                c.stdin_eof = true;
                let (id, running) = (c.id, c.phase == Phase::Running);
                if running {
                    self.events.push_back(Event::Eof(id));
                }
                Ok(())
            }
            Packet::ChannelClose(cl) => {
                let c = self.lookup(cl.num)?;
                c.close_received = true;
                c.stdout.clear();
                c.stderr.clear();
                c.stdin.clear();
                c.window = 0;
                let (id, peer, started) = (c.id, c.peer, c.phase != Phase::Opened);
                if !c.close_sent {
                    c.close_sent = true;
                    let mut r = alloc::vec![m::CLOSE];
                    put_u32(&mut r, peer);
                    self.send(&r);
                }
                if started {
                    self.events.push_back(Event::Closed(id));
                }
                self.channels
                    .retain(|c| !(c.close_sent && c.close_received));
                Ok(())
            }
            Packet::ChannelRequest(r) => self.on_request(r.num, r.want_reply, &r.req),
            _ => Err(self.fail(reason::PROTOCOL_ERROR, "malformed channel message")),
        }
    }

    fn lookup(&mut self, num: u32) -> Result<&mut Channel, Disconnect> {
        if let Some(i) = self
            .channels
            .iter()
            .position(|c| c.id.0 == num && !c.close_received)
        {
            return Ok(&mut self.channels[i]);
        }
        Err(self.fail(reason::PROTOCOL_ERROR, "message for an unknown channel"))
    }

    fn on_open(
        &mut self,
        peer: u32,
        window: u32,
        max_packet: u32,
        ty: &ChannelOpenType<'_>,
        host: &mut (impl Host + ?Sized),
    ) {
        let refusal = match ty {
            ChannelOpenType::Session if self.channels.len() >= self.cfg.max_channels => Some((
                sunset::ChanFail::SSH_OPEN_RESOURCE_SHORTAGE,
                "too many channels",
            )),
            ChannelOpenType::Session => None,
            ChannelOpenType::Unknown(_) => Some((
                sunset::ChanFail::SSH_OPEN_UNKNOWN_CHANNEL_TYPE,
                "unknown channel type",
            )),
            _ => Some((
                sunset::ChanFail::SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
                "forwarding disabled",
            )),
        };
        if let Some((code, why)) = refusal {
            let mut r = alloc::vec![m::OPEN_FAILURE];
            put_u32(&mut r, peer);
            put_u32(&mut r, code as u32);
            put_string(&mut r, why.as_bytes());
            put_string(&mut r, b"");
            self.send(&r);
            return;
        }
        let id = ChannelId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        self.channels
            .push(Channel::new(id, peer, window, max_packet));
        let target = self.target(host);
        let policy = self.cfg.window;
        let credit = self
            .channels
            .last_mut()
            .map_or(0, |c| c.recredit(&policy, target));
        let mut r = alloc::vec![m::OPEN_CONFIRMATION];
        put_u32(&mut r, peer);
        put_u32(&mut r, id.0);
        put_u32(&mut r, u32::try_from(credit).unwrap_or(u32::MAX));
        put_u32(&mut r, self.cfg.max_packet);
        self.send(&r);
    }

    fn on_data(
        &mut self,
        num: u32,
        data: &[u8],
        ext: bool,
        host: &mut (impl Host + ?Sized),
    ) -> Result<(), Disconnect> {
        let max = self.cfg.max_packet as usize;
        let c = self.lookup(num)?;
        if c.stdin_eof {
            return Err(self.fail(reason::PROTOCOL_ERROR, "channel data after EOF"));
        }
        if data.len() > c.window || data.len() > max {
            return Err(self.fail(reason::PROTOCOL_ERROR, "peer ignored channel window"));
        }
        if ext {
            // Extended data has no meaning towards a session; its credit
            // comes back with the next adjust.
            c.window -= data.len();
            return Ok(());
        }
        let was_empty = c.stdin.is_empty();
        let (id, running) = (c.id, c.phase == Phase::Running);
        if c.pty.is_some() && running {
            // A pty's line discipline: Ctrl-C interrupts the foreground job.
            c.receive_pty(data, INTR, || host.interrupt(id));
        } else {
            c.receive(data);
        }
        if was_empty && running && !c.stdin.is_empty() {
            self.events.push_back(Event::StdinReady(id));
        }
        Ok(())
    }

    fn on_request(
        &mut self,
        num: u32,
        want_reply: bool,
        req: &ChannelReqType<'_>,
    ) -> Result<(), Disconnect> {
        let c = self.lookup(num)?;
        let (id, peer) = (c.id, c.peer);
        let text = |t: &sunset::sshwire::TextString<'_>| String::from_utf8_lossy(t.0).into_owned();
        let ok = match req {
            ChannelReqType::Pty(p) if c.phase == Phase::Opened => {
                c.pty = Some(Pty {
                    term: text(&p.term),
                    cols: p.cols,
                    rows: p.rows,
                });
                true
            }
            ChannelReqType::Environment(e) if c.phase == Phase::Opened && c.env.len() < MAX_ENV => {
                c.env.push((text(&e.name), text(&e.value)));
                true
            }
            ChannelReqType::Shell | ChannelReqType::Exec(_) if c.phase == Phase::Opened => {
                c.phase = Phase::Running;
                let exec = match req {
                    ChannelReqType::Exec(e) => Some(text(&e.command)),
                    _ => None,
                };
                let command = Command {
                    exec,
                    pty: c.pty.clone(),
                    env: core::mem::take(&mut c.env),
                };
                let eof = c.stdin_eof;
                let data = !c.stdin.is_empty();
                self.events.push_back(Event::Start {
                    channel: id,
                    command,
                });
                if data {
                    self.events.push_back(Event::StdinReady(id));
                }
                if eof {
                    self.events.push_back(Event::Eof(id));
                }
                true
            }
            ChannelReqType::WinChange(w) => {
                self.events.push_back(Event::WindowChange {
                    channel: id,
                    cols: w.cols,
                    rows: w.rows,
                });
                true
            }
            // OpenSSH's "end of write": the client can take no more output
            // (its stdout is gone). Writes now fail, as a pipe's would.
            ChannelReqType::Unknown(u) if u.0 == b"eow@openssh.com" => {
                c.output_closed = true;
                c.stdout.clear();
                c.stderr.clear();
                true
            }
            ChannelReqType::Signal(s) => {
                self.events.push_back(Event::Signal {
                    channel: id,
                    name: s.sig.into(),
                });
                true
            }
            _ => false,
        };
        if want_reply {
            let mut r = alloc::vec![if ok { m::SUCCESS } else { m::FAILURE }];
            put_u32(&mut r, peer);
            self.send(&r);
        }
        Ok(())
    }

    fn target(&self, host: &(impl Host + ?Sized)) -> usize {
        let held: usize = self.channels.iter().map(|c| c.stdin.capacity()).sum();
        let open = self.channels.iter().filter(|c| !c.close_received).count();
        self.cfg.window.target(host.headroom(), held, open)
    }

    /// Resizes every channel's stdin reservation and sends the credit due.
    pub(super) fn recredit(&mut self, host: &(impl Host + ?Sized)) {
        if self.kex.is_some() || self.closed.is_some() || self.channels.is_empty() {
            return;
        }
        let target = self.target(host);
        let policy = self.cfg.window;
        for i in 0..self.channels.len() {
            let credit = self.channels[i].recredit(&policy, target);
            if credit > 0 {
                let mut r = alloc::vec![m::WINDOW_ADJUST];
                put_u32(&mut r, self.channels[i].peer);
                put_u32(&mut r, u32::try_from(credit).unwrap_or(u32::MAX));
                self.send_now(&r);
            }
        }
    }

    /// Encodes channel output while the send queue and the client's
    /// windows allow, round-robin over channels; then sends the exit
    /// sequence of channels whose command ended and whose output is sent.
    pub(super) fn flush(&mut self) {
        if self.kex.is_some() || self.closed.is_some() {
            return;
        }
        let limit = self.cfg.send_queue;
        let max_data = self.cfg.max_packet as usize;
        let mut progress = true;
        while progress && self.pending_out() < limit {
            progress = false;
            for i in 0..self.channels.len() {
                if self.pending_out() >= limit {
                    break;
                }
                let c = &mut self.channels[i];
                let ext = !c.stderr.is_empty();
                let buf = if ext { &mut c.stderr } else { &mut c.stdout };
                let header = if ext { 13 } else { 9 };
                let n = buf
                    .len()
                    .min(c.peer_window)
                    .min(c.peer_max_packet.saturating_sub(header).max(1))
                    .min(max_data);
                if n == 0 || c.close_sent {
                    continue;
                }
                let mut p = core::mem::take(&mut self.scratch);
                p.clear();
                p.push(if ext { m::EXTENDED_DATA } else { m::DATA });
                put_u32(&mut p, c.peer);
                if ext {
                    put_u32(&mut p, SSH_EXTENDED_DATA_STDERR);
                }
                put_u32(&mut p, u32::try_from(n).unwrap_or(u32::MAX));
                buf.pop_to_vec(n, &mut p);
                c.peer_window -= n;
                self.send_now(&p);
                self.scratch = p;
                progress = true;
            }
        }
        let cap = self.cfg.output_buffer;
        let mut done = Vec::new();
        for c in &mut self.channels {
            if c.writer_blocked && !c.close_received && c.stdout.len() < cap && c.stderr.len() < cap
            {
                c.writer_blocked = false;
                self.events.push_back(Event::Writable(c.id));
            }
            if c.phase == Phase::Exited
                && c.stdout.is_empty()
                && c.stderr.is_empty()
                && !c.close_sent
            {
                done.push(c.id);
            }
        }
        for id in done {
            self.finish(id);
        }
        self.channels
            .retain(|c| !(c.close_sent && c.close_received));
    }

    fn finish(&mut self, id: ChannelId) {
        let Some(c) = self.chan_mut(id) else { return };
        let peer = c.peer;
        let exit = c.exit.take();
        let eof_sent = c.eof_sent;
        c.eof_sent = true;
        c.close_sent = true;
        c.stdout.clear();
        c.stderr.clear();
        let mut r = alloc::vec![m::REQUEST];
        put_u32(&mut r, peer);
        match exit {
            Some(Exit::Status(s)) => {
                put_string(&mut r, b"exit-status");
                r.push(0);
                put_u32(&mut r, s);
            }
            Some(Exit::Signal { name, message }) => {
                put_string(&mut r, b"exit-signal");
                r.push(0);
                put_string(&mut r, name.as_bytes());
                r.push(0);
                put_string(&mut r, message.as_bytes());
                put_string(&mut r, b"");
            }
            None => r.clear(),
        }
        if !r.is_empty() {
            self.send_now(&r);
        }
        if !eof_sent {
            let mut e = alloc::vec![m::EOF];
            put_u32(&mut e, peer);
            self.send_now(&e);
        }
        let mut cl = alloc::vec![m::CLOSE];
        put_u32(&mut cl, peer);
        self.send_now(&cl);
    }
}
