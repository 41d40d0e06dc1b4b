//! Task events, published to containerd (`Events/Forward` on
//! `TTRPC_ADDRESS`) by one thread from one queue, so they reach containerd
//! in the order the service queued them. The service queues an event while
//! it holds the lock that orders the lifecycle (create → start → exit →
//! delete), which is what gives containerd its required order.

use std::sync::mpsc::{self, Sender};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_shim::publisher::RemotePublisher;
use containerd_shim::Context;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::MessageDyn;

enum Item {
    Event(&'static str, Box<dyn MessageDyn>),
    /// Answered once everything queued before it has been sent.
    Flush(Sender<()>),
}

/// The queue of events to publish.
#[derive(Clone)]
pub struct Events {
    tx: Sender<Item>,
}

impl Events {
    /// Start the publisher thread for `namespace`.
    pub fn start(publisher: RemotePublisher, namespace: String) -> Events {
        let (tx, rx) = mpsc::channel::<Item>();
        let spawned = std::thread::Builder::new().name("events".into()).stack_size(256 * 1024).spawn(move || {
            for item in rx {
                match item {
                    Item::Event(topic, event) => publish(&publisher, &namespace, topic, event),
                    Item::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        if let Err(e) = spawned {
            log::error!("events: cannot start the publisher thread: {e}");
        }
        Events { tx }
    }

    /// Queue `event` under `topic` (one of `containerd_shim_protos::topics`).
    pub fn send(&self, topic: &'static str, event: impl MessageDyn) {
        let _ = self.tx.send(Item::Event(topic, Box::new(event)));
    }

    /// Wait (at most `timeout`) until every event queued so far was sent.
    pub fn flush(&self, timeout: Duration) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Item::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(timeout);
        }
    }
}

fn publish(publisher: &RemotePublisher, namespace: &str, topic: &str, event: Box<dyn MessageDyn>) {
    // containerd may be busy or restarting: retry a little, then give up on
    // this one event (containerd resyncs task state through State/Wait).
    let mut event = Some(event);
    for attempt in 0..5 {
        let Some(ev) = event.take() else { return };
        let copy = ev.clone_box();
        match publisher.publish(Context::default(), topic, namespace, ev) {
            Ok(()) => return,
            Err(e) => {
                log::warn!("events: publishing {topic} (attempt {}): {e}", attempt + 1);
                event = Some(copy);
                std::thread::sleep(Duration::from_millis(50 << attempt));
            }
        }
    }
    log::error!("events: dropped {topic} after 5 attempts");
}

/// A protobuf timestamp of `t`.
pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32, ..Default::default() }
}
