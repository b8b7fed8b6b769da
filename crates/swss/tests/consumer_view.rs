//! `read_consumer_view` against a real redis-server while a consumer pops
//! at the same time: every key is seen with the value it will end with,
//! never half-popped.

mod common;

use common::{fv, Env};
use swss::consumer_view::read_consumer_view;
use swss::{ConsumerStateTable, ProducerStateTable};

const KEYS: usize = 4000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_read_during_pops_shows_every_key_as_it_will_end() {
    let env = Env::start();
    let appl = env.connector("APPL_DB");
    let mut conn = appl.connect().await.unwrap();
    let p = ProducerStateTable::new("VIEW_T", appl.location());
    p.load_scripts(&mut conn).await.unwrap();
    let key = |i: usize| format!("Ethernet0:10.1.{}.{}", i / 256, i % 256);
    let old: Vec<_> = (0..KEYS)
        .map(|i| {
            (
                key(i),
                fv(&[("neigh", "02:00:00:00:00:01"), ("family", "IPv4")]),
            )
        })
        .collect();
    let new: Vec<_> = (0..KEYS)
        .map(|i| {
            (
                key(i),
                fv(&[("neigh", "02:00:00:00:00:02"), ("family", "IPv4")]),
            )
        })
        .collect();
    let mut consumer = ConsumerStateTable::new(&appl, "VIEW_T", 16).await.unwrap();
    let mut pipe = redis::pipe();
    p.queue_batch_set(&mut pipe, &old);
    let () = pipe.query_async(&mut conn).await.unwrap();
    consumer.drain().await.unwrap();
    // All keys consumed with the old value; now the new value is pending
    // and a consumer pops it in small batches while the view is read.
    let mut pipe = redis::pipe();
    p.queue_batch_set(&mut pipe, &new);
    let () = pipe.query_async(&mut conn).await.unwrap();
    let popper = tokio::spawn(async move {
        consumer.drain().await.unwrap();
    });
    let view = read_consumer_view(&mut conn, &p, "APPL_DB").await.unwrap();
    popper.await.unwrap();
    assert_eq!(view.len(), KEYS);
    let stale: Vec<_> = new
        .iter()
        .filter(|(k, want)| view.get(k) != Some(want))
        .map(|(k, _)| k)
        .take(5)
        .collect();
    assert!(stale.is_empty(), "seen with the old value: {stale:?}");
}
