//! [`GlommioRuntime`]: quinn (QUIC) running on a glommio executor, so each shard serves its
//! own QUIC endpoint on its own core.
//!
//! quinn needs three things from a runtime: timers, a way to spawn its endpoint driver, and
//! UDP I/O with readiness. Here they are glommio timers, `glommio::spawn_local`, and
//! quinn-udp's socket state (GSO/GRO, ECN) on a non-blocking socket; when a receive would
//! block, a glommio `peek_from` of one byte on a duplicate of the socket — an io_uring
//! receive that completes when a datagram is waiting — wakes quinn. quinn asks whether the
//! socket is writable before every transmit: it is, unless the last send found the socket
//! buffer full; then quinn retries after a short glommio timer. (Waiting on that timer
//! before every transmit capped a connection at ~90 MB/s.)
//!
//! quinn's traits require `Send`; glommio's timers and sockets are not. They are kept in
//! `SendWrapper`s, which panic if touched from another thread: an endpoint, its connections
//! and streams stay on the shard that made them (the thread-per-core rule anyway).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use quinn::{AsyncTimer, AsyncUdpSocket, Runtime, UdpPoller};
use send_wrapper::SendWrapper;

/// How long a send that found the socket buffer full waits before quinn tries again.
const SEND_RETRY_DELAY: Duration = Duration::from_micros(50);

/// Socket buffer size asked for on QUIC sockets (the kernel caps it at `rmem_max` /
/// `wmem_max`; 4 MiB on our machines).
pub const UDP_SOCKET_BUFFER_SIZE_BYTES: usize = 4 * 1024 * 1024;

/// One socket's send counts. Each socket belongs to one shard, so only its own core writes
/// them (no cache line shared between shards on the send path); readers sum them.
#[derive(Debug, Default)]
struct SendCounters {
    transmits: AtomicU64,
    blocked: AtomicU64,
    retry_waits: AtomicU64,
}

impl SendCounters {
    fn stats(&self) -> UdpSendStats {
        UdpSendStats {
            transmits: self.transmits.load(Ordering::Relaxed),
            blocked: self.blocked.load(Ordering::Relaxed),
            retry_waits: self.retry_waits.load(Ordering::Relaxed),
        }
    }
}

/// Every socket's counters (registered once per socket; dropped sockets stay counted).
static SEND_COUNTERS: Mutex<Vec<Arc<SendCounters>>> = Mutex::new(Vec::new());

/// How UDP sends went on the glommio runtime's sockets, since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpSendStats {
    /// Transmits handed to the kernel (one or more datagrams each, with GSO).
    pub transmits: u64,
    /// Sends refused because the socket buffer was full.
    pub blocked: u64,
    /// Times a connection waited [`SEND_RETRY_DELAY`] before sending again.
    pub retry_waits: u64,
}

/// The counts of UDP sends so far, all sockets together.
pub fn udp_send_stats() -> UdpSendStats {
    let counters = SEND_COUNTERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    counters.iter().map(|counters| counters.stats()).fold(UdpSendStats::default(), |sum, one| {
        UdpSendStats {
            transmits: sum.transmits + one.transmits,
            blocked: sum.blocked + one.blocked,
            retry_waits: sum.retry_waits + one.retry_waits,
        }
    })
}

/// The quinn runtime for endpoints created on a glommio executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct GlommioRuntime;

impl Runtime for GlommioRuntime {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(GlommioTimer::new(deadline))
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        glommio::spawn_local(future).detach();
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(GlommioUdpSocket::new(socket)?))
    }
}

/// Binds a UDP socket for a QUIC endpoint with large send and receive buffers.
pub fn bind_udp(address: SocketAddr, buffer_size_bytes: usize) -> io::Result<std::net::UdpSocket> {
    let domain = socket2::Domain::for_address(address);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: the kernel caps these at its maxima and that is fine.
    let _ = socket.set_recv_buffer_size(buffer_size_bytes);
    let _ = socket.set_send_buffer_size(buffer_size_bytes);
    socket.bind(&address.into())?;
    Ok(socket.into())
}

/// The receive and send buffer sizes the kernel actually gave `socket`.
pub fn udp_buffer_sizes(socket: &std::net::UdpSocket) -> io::Result<(usize, usize)> {
    let socket = socket2::SockRef::from(socket);
    Ok((socket.recv_buffer_size()?, socket.send_buffer_size()?))
}

struct GlommioTimer {
    timer: SendWrapper<Pin<Box<glommio::timer::Timer>>>,
}

impl GlommioTimer {
    fn new(deadline: Instant) -> Self {
        let timer = glommio::timer::Timer::new(deadline.saturating_duration_since(Instant::now()));
        Self { timer: SendWrapper::new(Box::pin(timer)) }
    }
}

impl std::fmt::Debug for GlommioTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlommioTimer").finish_non_exhaustive()
    }
}

impl AsyncTimer for GlommioTimer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        let delay = deadline.saturating_duration_since(Instant::now());
        *self.timer = Box::pin(glommio::timer::Timer::new(delay));
    }

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        self.timer.as_mut().poll(context).map(|_| ())
    }
}

type Readiness = Pin<Box<dyn Future<Output = io::Result<()>>>>;

struct GlommioUdpSocket {
    io: std::net::UdpSocket,
    state: quinn_udp::UdpSocketState,
    /// A duplicate of `io` on glommio's reactor, only ever used to wait for data.
    peeker: SendWrapper<Rc<glommio::net::UdpSocket>>,
    /// The wait in progress, if a receive found nothing.
    readable: SendWrapper<RefCell<Option<Readiness>>>,
    /// The last send found the socket buffer full: senders wait before trying again.
    blocked: AtomicBool,
    counters: Arc<SendCounters>,
}

impl GlommioUdpSocket {
    fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let state = quinn_udp::UdpSocketState::new((&socket).into())?;
        let duplicate = socket2::Socket::from(socket.try_clone()?);
        let peeker = glommio::net::UdpSocket::from(duplicate);
        let counters = Arc::new(SendCounters::default());
        SEND_COUNTERS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(counters.clone());
        Ok(Self {
            io: socket,
            state,
            peeker: SendWrapper::new(Rc::new(peeker)),
            readable: SendWrapper::new(RefCell::new(None)),
            blocked: AtomicBool::new(false),
            counters,
        })
    }
}

impl std::fmt::Debug for GlommioUdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlommioUdpSocket")
            .field("local", &self.io.local_addr())
            .finish_non_exhaustive()
    }
}

impl AsyncUdpSocket for GlommioUdpSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(RetryPoller { socket: self, timer: SendWrapper::new(None) })
    }

    fn try_send(&self, transmit: &quinn_udp::Transmit<'_>) -> io::Result<()> {
        match self.state.send((&self.io).into(), transmit) {
            Ok(()) => {
                self.counters.transmits.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(error) => {
                if error.kind() == io::ErrorKind::WouldBlock {
                    self.counters.blocked.fetch_add(1, Ordering::Relaxed);
                    self.blocked.store(true, Ordering::Relaxed);
                }
                Err(error)
            }
        }
    }

    fn poll_recv(
        &self,
        context: &mut Context<'_>,
        buffers: &mut [io::IoSliceMut<'_>],
        meta: &mut [quinn_udp::RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.state.recv((&self.io).into(), buffers, meta) {
                Ok(count) => return Poll::Ready(Ok(count)),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Poll::Ready(Err(error)),
            }
            let mut readable = self.readable.borrow_mut();
            let wait = readable.get_or_insert_with(|| {
                let peeker = Rc::clone(&self.peeker);
                Box::pin(async move {
                    let mut byte = [0u8; 1];
                    peeker.peek_from(&mut byte).await.map(|_| ()).map_err(io::Error::from)
                })
            });
            match wait.as_mut().poll(context) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => {
                    *readable = None;
                    // An ICMP error surfaced by the peek is consumed; anything else is real.
                    if let Err(error) = result {
                        if error.kind() != io::ErrorKind::ConnectionRefused {
                            return Poll::Ready(Err(error));
                        }
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }

    fn max_transmit_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.state.gro_segments()
    }
}

/// Tells quinn the socket is writable, or, after a send found its buffer full, to retry
/// after [`SEND_RETRY_DELAY`].
struct RetryPoller {
    socket: Arc<GlommioUdpSocket>,
    timer: SendWrapper<Option<Pin<Box<glommio::timer::Timer>>>>,
}

impl std::fmt::Debug for RetryPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryPoller").finish_non_exhaustive()
    }
}

impl UdpPoller for RetryPoller {
    fn poll_writable(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.timer.is_none() && !self.socket.blocked.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(glommio::timer::Timer::new(SEND_RETRY_DELAY)));
        match timer.as_mut().poll(context) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => {
                *self.timer = None;
                self.socket.blocked.store(false, Ordering::Relaxed);
                self.socket.counters.retry_waits.fetch_add(1, Ordering::Relaxed);
                Poll::Ready(Ok(()))
            }
        }
    }
}
