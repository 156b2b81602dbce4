//! What stored history really holds on the heap, measured with glibc's own
//! count, next to what the history counts (run with `--ignored --nocapture`).

use std::mem::size_of;

use super::*;
use crate::envelope::{self, Data, Payload};

/// Heap in use, as glibc counts it (all arenas, chunk headers included).
fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    unsafe { libc::mallinfo2() }.uordblks
}

/// Fills a history with `per_channel` messages of 100-byte text on each of
/// `channels` channels, stored as the WebSocket frame of their envelope.
fn measure(channels: usize, per_channel: usize) {
    let payload = "x".repeat(100);
    let names: Vec<ChannelName> = (0..channels).map(|i| name(&format!("channel-{i:05}"))).collect();
    let t = Instant::now();
    let before = heap_in_use();
    let mut h: History<Frame> = history(HistoryLimits::default());
    let mut frame_len = 0;
    for _ in 0..per_channel {
        for channel in &names {
            let data = Data::new(Payload::Text(&payload));
            let stored = h.publish(channel, t, |id| {
                crate::frame::text(&envelope::message(channel, &id, &data))
            });
            frame_len = stored.frames().len();
        }
    }
    let held = heap_in_use() - before;
    let totals = h.totals();
    println!(
        "{channels} channels x {per_channel}: frame {frame_len} B; glibc {} B/message, counted {} B/message ({} messages)",
        held / totals.messages,
        totals.bytes_per_message,
        totals.messages
    );
}

#[test]
#[ignore = "a memory report, not a test; run alone"]
fn bytes_per_stored_message() {
    type S = Stored<Frame>;
    println!(
        "Stored<Arc<[u8]>> {} B, its Arc chunk {} B; deque slot {} B; channel entry {} B + deque buffer",
        size_of::<S>(),
        heap_cost(16 + size_of::<S>()),
        size_of::<Arc<S>>(),
        evict::entry_bytes::<Frame>(),
    );
    measure(1_000, 100);
    measure(100, 100);
    measure(10_000, 1);
}
