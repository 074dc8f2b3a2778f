//! The in-memory log's events, written as bytes: a tag for the variant,
//! then its fields in order, numbers as variable-length integers, texts
//! as their length and bytes.
//!
//! Kept as an [`Event`], every event took as much as the largest variant
//! (80 bytes) plus a heap block for an order's placing: the eight events
//! of a lifecycle were 1,070 bytes, written here in about 130. A lifecycle
//! of the in-memory engine kept about 3,800 bytes, and each one more cost
//! time (new memory is a page fault, then a cache miss): 700 bytes more
//! made a lifecycle 5 % slower (BENCHMARKS.md, "twenty-second session").
//! Events are written once and read back only by `events`, a rebuild and
//! a copy, which decode them.
//!
//! Each variant is named once, in [`codec!`], with its fields: the encoder
//! and the decoder are made from that one list, and the encoder's `match`
//! does not compile while a variant is missing from it.

use std::sync::Arc;

use crate::domain::{ChargeStatus, Event, OrderItem, PaymentStatus, Placed, SmolStr};

/// Appends `event`'s bytes to `out`.
pub(super) fn encode(event: &Event, out: &mut Vec<u8>) {
    encode_event(event, out);
}

/// The event `bytes` holds, all of them; `None` if they are not one that
/// [`encode`] wrote.
pub(super) fn decode(bytes: &[u8]) -> Option<Event> {
    let mut input = bytes;
    let event = decode_event(&mut input)?;
    input.is_empty().then_some(event)
}

/// Appends `text`: its length, then its bytes.
pub(super) fn encode_text(text: &str, out: &mut Vec<u8>) {
    put_str(text, out);
}

/// The text [`encode_text`] wrote at the start of `input`, which moves
/// past it.
pub(super) fn decode_text<'a>(input: &mut &'a [u8]) -> Option<&'a str> {
    take_str(input)
}

/// A value that writes itself as bytes and reads itself back.
trait Field: Sized {
    fn put(&self, out: &mut Vec<u8>);
    fn take(input: &mut &[u8]) -> Option<Self>;
}

/// Unsigned LEB128: seven bits a byte, the lowest first, the top bit set
/// on every byte but the last.
impl Field for u64 {
    fn put(&self, out: &mut Vec<u8>) {
        let mut n = *self;
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn take(input: &mut &[u8]) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = input.split_first()?;
            *input = rest;
            if shift == 63 && byte > 1 {
                return None; // past 64 bits
            }
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
}

/// Zigzag, then as a `u64`: small numbers of either sign take one byte.
impl Field for i64 {
    fn put(&self, out: &mut Vec<u8>) {
        (((*self << 1) ^ (*self >> 63)) as u64).put(out);
    }

    fn take(input: &mut &[u8]) -> Option<i64> {
        let n = u64::take(input)?;
        Some(((n >> 1) as i64) ^ -((n & 1) as i64))
    }
}

impl Field for u32 {
    fn put(&self, out: &mut Vec<u8>) {
        u64::from(*self).put(out);
    }

    fn take(input: &mut &[u8]) -> Option<u32> {
        u32::try_from(u64::take(input)?).ok()
    }
}

impl Field for u8 {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }

    fn take(input: &mut &[u8]) -> Option<u8> {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        Some(byte)
    }
}

/// Its length, then its bytes.
fn put_str(text: &str, out: &mut Vec<u8>) {
    (text.len() as u64).put(out);
    out.extend_from_slice(text.as_bytes());
}

fn take_str<'a>(input: &mut &'a [u8]) -> Option<&'a str> {
    let len = usize::try_from(u64::take(input)?).ok()?;
    let (text, rest) = input.split_at_checked(len)?;
    *input = rest;
    std::str::from_utf8(text).ok()
}

impl Field for String {
    fn put(&self, out: &mut Vec<u8>) {
        put_str(self, out);
    }

    fn take(input: &mut &[u8]) -> Option<String> {
        take_str(input).map(String::from)
    }
}

impl Field for SmolStr {
    fn put(&self, out: &mut Vec<u8>) {
        put_str(self, out);
    }

    fn take(input: &mut &[u8]) -> Option<SmolStr> {
        take_str(input).map(SmolStr::new)
    }
}

/// 0 for `None`; 1, then the value.
impl<T: Field> Field for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                value.put(out);
            }
        }
    }

    fn take(input: &mut &[u8]) -> Option<Option<T>> {
        match u8::take(input)? {
            0 => Some(None),
            1 => T::take(input).map(Some),
            _ => None,
        }
    }
}

/// A status as its place in its type's `ALL`.
macro_rules! status_field {
    ($($ty:ty),+) => {$(
        impl Field for $ty {
            fn put(&self, out: &mut Vec<u8>) {
                let place = <$ty>::ALL.iter().position(|s| s == self).unwrap_or(usize::MAX);
                (place as u64).put(out);
            }

            fn take(input: &mut &[u8]) -> Option<$ty> {
                <$ty>::ALL.get(usize::try_from(u64::take(input)?).ok()?).copied()
            }
        }
    )+};
}

status_field!(PaymentStatus, ChargeStatus);

impl Field for OrderItem {
    fn put(&self, out: &mut Vec<u8>) {
        let OrderItem { menu_id, name, unit_price, qty } = self;
        menu_id.put(out);
        name.put(out);
        unit_price.put(out);
        qty.put(out);
    }

    fn take(input: &mut &[u8]) -> Option<OrderItem> {
        Some(OrderItem {
            menu_id: Field::take(input)?,
            name: Field::take(input)?,
            unit_price: Field::take(input)?,
            qty: Field::take(input)?,
        })
    }
}

/// How many, then each.
impl Field for Arc<[OrderItem]> {
    fn put(&self, out: &mut Vec<u8>) {
        (self.len() as u64).put(out);
        self.iter().for_each(|item| item.put(out));
    }

    fn take(input: &mut &[u8]) -> Option<Arc<[OrderItem]>> {
        let count = usize::try_from(u64::take(input)?).ok()?;
        // Each item takes at least four bytes: a count past what is left
        // is not one this wrote (and must not reserve room for it).
        let items = (0..count.min(input.len() / 4 + 1)).map(|_| OrderItem::take(input)).collect::<Option<Vec<_>>>()?;
        (items.len() == count).then(|| items.into())
    }
}

impl Field for Placed {
    fn put(&self, out: &mut Vec<u8>) {
        let Placed { order_id, store_id, store, customer, address, items, total } = self;
        order_id.put(out);
        store_id.put(out);
        store.put(out);
        customer.put(out);
        address.put(out);
        items.put(out);
        total.put(out);
    }

    fn take(input: &mut &[u8]) -> Option<Placed> {
        Some(Placed {
            order_id: Field::take(input)?,
            store_id: Field::take(input)?,
            store: Field::take(input)?,
            customer: Field::take(input)?,
            address: Field::take(input)?,
            items: Field::take(input)?,
            total: Field::take(input)?,
        })
    }
}

/// `encode_event` and `decode_event` for the variants listed, each under
/// its tag. The bytes never outlive the process, so tags may be renumbered;
/// a tag given twice makes an unreachable arm in `decode_event`, which the
/// build refuses (warnings are errors in CI).
macro_rules! codec {
    (
        boxed { $boxed_tag:literal => $boxed:ident }
        $($tag:literal => $variant:ident { $($field:ident),+ },)+
    ) => {
        fn encode_event(event: &Event, out: &mut Vec<u8>) {
            match event {
                Event::$boxed(placed) => {
                    out.push($boxed_tag);
                    placed.put(out);
                }
                $(Event::$variant { $($field),+ } => {
                    out.push($tag);
                    $($field.put(out);)+
                })+
            }
        }

        fn decode_event(input: &mut &[u8]) -> Option<Event> {
            Some(match u8::take(input)? {
                $boxed_tag => Event::$boxed(Box::new(Placed::take(input)?)),
                $($tag => Event::$variant { $($field: Field::take(input)?),+ },)+
                _ => return None,
            })
        }
    };
}

codec! {
    boxed { 0 => OrderPlaced }
    1 => StoreRegistered { store_id, name, owner },
    2 => StoreOpened { store_id },
    3 => StoreClosed { store_id },
    4 => MenuAdded { store_id, menu_id, name, price },
    5 => MenuSoldOut { store_id, menu_id },
    6 => MenuAvailable { store_id, menu_id },
    7 => RiderRegistered { rider_id, name },
    8 => PaymentApproved { order_id, payment_id, amount, card },
    9 => PaymentDeclined { order_id, payment_id, amount, reason, card },
    10 => PaymentQueued { order_id, payment_id, amount, reason, card },
    11 => PaymentNeedsAttention { order_id, payment_id, amount, reason, card },
    12 => PaymentRequeued { order_id, payment_id, status },
    13 => PaymentVoided { order_id, payment_id },
    14 => PaymentRefundRequested { order_id, payment_id, amount },
    15 => PaymentRefunded { order_id, payment_id, amount },
    16 => OrderRejected { order_id, reason },
    17 => CookingStarted { order_id },
    18 => FoodCooked { order_id },
    19 => DeliveryPrepared { order_id, rider_id, rider, charge_id, charge },
    20 => DeliveryRiderAssigned { order_id, rider_id, rider, charge_id, charge },
    21 => DeliveryChargePaid { order_id, charge_id, rider_id, amount },
    22 => DeliveryStarted { order_id, rider_id, rider },
    23 => DeliveryCompleted { order_id },
    24 => OrderCancelled { order_id, reason },
    25 => DeliveryCancelled { order_id },
    26 => DeliveryChargeRefundRequested { order_id, charge_id, amount },
    27 => DeliveryChargeRefunded { order_id, charge_id, amount },
    28 => DeliveryChargeVoided { order_id, charge_id },
    29 => DeliveryChargeNeedsAttention { order_id, charge_id, amount, reason },
    30 => DeliveryChargeRequeued { order_id, charge_id, status },
    31 => ReviewRegistered { order_id, store_id, score, text },
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::EventType;

    /// An event of type `kind`, its fields made of `n` (numbers), `text`
    /// and `some` (whether an optional field is there): one for every
    /// type, as the `match` does not compile while a type is missing.
    fn example(kind: EventType, n: [i64; 4], text: &str, some: bool) -> Event {
        let [a, b, c, d] = n;
        let text = || String::from(text);
        let smol = || SmolStr::new(text());
        let opt = || some.then(text);
        let payment_status = PaymentStatus::ALL[a.unsigned_abs() as usize % PaymentStatus::ALL.len()];
        let charge_status = ChargeStatus::ALL[b.unsigned_abs() as usize % ChargeStatus::ALL.len()];
        match kind {
            EventType::StoreRegistered => Event::StoreRegistered { store_id: a, name: text(), owner: text() + "님" },
            EventType::StoreOpened => Event::StoreOpened { store_id: a },
            EventType::StoreClosed => Event::StoreClosed { store_id: a },
            EventType::MenuAdded => Event::MenuAdded { store_id: a, menu_id: b, name: text(), price: c },
            EventType::MenuSoldOut => Event::MenuSoldOut { store_id: a, menu_id: b },
            EventType::MenuAvailable => Event::MenuAvailable { store_id: a, menu_id: b },
            EventType::RiderRegistered => Event::RiderRegistered { rider_id: a, name: text() },
            EventType::OrderPlaced => Event::OrderPlaced(Box::new(Placed {
                order_id: a,
                store_id: b,
                store: smol(),
                customer: SmolStr::new(text().repeat(3)),
                address: if some { smol() } else { SmolStr::default() },
                items: (0..(d.unsigned_abs() % 4))
                    .map(|i| OrderItem { menu_id: c, name: smol(), unit_price: d, qty: i as u32 * 500 })
                    .collect::<Vec<_>>()
                    .into(),
                total: c,
            })),
            EventType::PaymentApproved => Event::PaymentApproved { order_id: a, payment_id: b, amount: c, card: opt() },
            EventType::PaymentDeclined => {
                Event::PaymentDeclined { order_id: a, payment_id: b, amount: c, reason: text(), card: opt() }
            }
            EventType::PaymentQueued => {
                Event::PaymentQueued { order_id: a, payment_id: b, amount: c, reason: text(), card: opt() }
            }
            EventType::PaymentNeedsAttention => {
                Event::PaymentNeedsAttention { order_id: a, payment_id: b, amount: c, reason: text(), card: opt() }
            }
            EventType::PaymentRequeued => Event::PaymentRequeued { order_id: a, payment_id: b, status: payment_status },
            EventType::PaymentVoided => Event::PaymentVoided { order_id: a, payment_id: b },
            EventType::PaymentRefundRequested => {
                Event::PaymentRefundRequested { order_id: a, payment_id: b, amount: c }
            }
            EventType::PaymentRefunded => Event::PaymentRefunded { order_id: a, payment_id: b, amount: c },
            EventType::OrderRejected => Event::OrderRejected { order_id: a, reason: text() },
            EventType::CookingStarted => Event::CookingStarted { order_id: a },
            EventType::FoodCooked => Event::FoodCooked { order_id: a },
            EventType::DeliveryPrepared => Event::DeliveryPrepared {
                order_id: a,
                rider_id: some.then_some(b),
                rider: some.then(smol),
                charge_id: some.then_some(c),
                charge: d,
            },
            EventType::DeliveryRiderAssigned => {
                Event::DeliveryRiderAssigned { order_id: a, rider_id: b, rider: smol(), charge_id: c, charge: d }
            }
            EventType::DeliveryChargePaid => {
                Event::DeliveryChargePaid { order_id: a, charge_id: b, rider_id: c, amount: d }
            }
            EventType::DeliveryStarted => Event::DeliveryStarted { order_id: a, rider_id: b, rider: smol() },
            EventType::DeliveryCompleted => Event::DeliveryCompleted { order_id: a },
            EventType::OrderCancelled => Event::OrderCancelled { order_id: a, reason: text() },
            EventType::DeliveryCancelled => Event::DeliveryCancelled { order_id: a },
            EventType::DeliveryChargeRefundRequested => {
                Event::DeliveryChargeRefundRequested { order_id: a, charge_id: b, amount: c }
            }
            EventType::DeliveryChargeRefunded => Event::DeliveryChargeRefunded { order_id: a, charge_id: b, amount: c },
            EventType::DeliveryChargeVoided => Event::DeliveryChargeVoided { order_id: a, charge_id: b },
            EventType::DeliveryChargeNeedsAttention => {
                Event::DeliveryChargeNeedsAttention { order_id: a, charge_id: b, amount: c, reason: text() }
            }
            EventType::DeliveryChargeRequeued => {
                Event::DeliveryChargeRequeued { order_id: a, charge_id: b, status: charge_status }
            }
            EventType::ReviewRegistered => {
                Event::ReviewRegistered { order_id: a, store_id: b, score: (c & 0xff) as u8, text: text() }
            }
        }
    }

    fn round_trip(event: &Event) -> Option<Event> {
        let mut bytes = Vec::new();
        encode(event, &mut bytes);
        decode(&bytes)
    }

    #[test]
    fn every_type_comes_back_as_it_was_written_and_a_lifecycle_is_small() {
        // The last number is how many items a placing has (modulo 4): 0, 0 and 3.
        let extremes = [[0, 0, 0, 0], [1, -1, i64::MAX, i64::MIN], [i64::MIN, i64::MAX, 127, 131]];
        for kind in EventType::ALL.iter().copied() {
            for (n, text, some) in [(extremes[0], "", false), (extremes[1], "교촌치킨 \"BBQ\"\n", true)]
                .into_iter()
                .chain([(extremes[2], "x", true)])
            {
                let event = example(kind, n, text, some);
                assert_eq!(event.kind(), kind);
                assert_eq!(round_trip(&event).as_ref(), Some(&event), "{event:?}");
            }
        }
        let lifecycle = [
            example(EventType::OrderPlaced, [12_345, 1, 38_000, 2], "교촌치킨", true),
            example(EventType::PaymentApproved, [12_345, 12_345, 38_000, 0], "", false),
            example(EventType::CookingStarted, [12_345, 0, 0, 0], "", false),
            example(EventType::FoodCooked, [12_345, 0, 0, 0], "", false),
            example(EventType::DeliveryRiderAssigned, [12_345, 3, 12_345, 3_000], "lee", true),
            example(EventType::DeliveryChargePaid, [12_345, 12_345, 3, 3_000], "", false),
            example(EventType::DeliveryStarted, [12_345, 3, 0, 0], "lee", true),
            example(EventType::DeliveryCompleted, [12_345, 0, 0, 0], "", false),
        ];
        let mut bytes = Vec::new();
        lifecycle.iter().for_each(|e| encode(e, &mut bytes));
        assert!(bytes.len() < 200, "a lifecycle's eight events took {} bytes", bytes.len());
    }

    #[test]
    fn bytes_this_did_not_write_are_refused() {
        let mut bytes = Vec::new();
        encode(&example(EventType::OrderPlaced, [1, 2, 3, 3], "BBQ", true), &mut bytes);
        for len in 0..bytes.len() {
            assert_eq!(decode(&bytes[..len]), None, "cut to {len} bytes");
        }
        assert_eq!(decode(&[bytes.as_slice(), &[0]].concat()), None, "a byte too many");
        assert_eq!(decode(&[200]), None, "an unknown tag");
        assert_eq!(decode(&[8, 2, 2, 2, 7]), None, "an option's tag that is neither 0 nor 1");
        assert_eq!(decode(&[12, 2, 2, 99]), None, "a status past the last");
        assert_eq!(decode(&[16, 2, 2, 0xff, 0xfe]), None, "a text that is not UTF-8");
        let past = [2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(decode(&past), None, "a number past 64 bits");
        assert_eq!(decode(&[&past[..10], &[0x01]].concat()).map(|e| e.kind()), Some(EventType::StoreOpened), "64 bits");
        let mut many = vec![0, 2, 2, 0, 0, 0];
        u64::MAX.put(&mut many);
        assert_eq!(decode(&many), None, "more items than there are bytes");
    }

    proptest! {
        #[test]
        fn any_event_comes_back_as_it_was_written(
            kind in proptest::sample::select(EventType::ALL),
            n in proptest::array::uniform4(any::<i64>()),
            text in ".{0,40}",
            some in any::<bool>(),
        ) {
            let event = example(kind, n, &text, some);
            prop_assert_eq!(round_trip(&event), Some(event));
        }

        #[test]
        fn numbers_of_any_size_come_back(n in any::<i64>(), u in any::<u64>()) {
            let mut bytes = Vec::new();
            n.put(&mut bytes);
            u.put(&mut bytes);
            let mut input = bytes.as_slice();
            prop_assert_eq!((i64::take(&mut input), u64::take(&mut input)), (Some(n), Some(u)));
            prop_assert!(input.is_empty());
        }
    }
}
