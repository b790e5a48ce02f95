//! Typed identifiers. A `ContactId` can never be passed where an `AddressBookId` is expected, and
//! the API's global ids carry the type so that a group id given for a contact is `NOT_FOUND`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($($name:ident => $tag:literal),* $(,)?) => {$(
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The type tag used in global ids.
            pub const TAG: &'static str = $tag;
            /// A fresh, unguessable, time-ordered id (UUIDv7: random bits keep it unguessable,
            /// the time prefix keeps B-tree inserts local).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

typed_id! {
    TenantId => "Tenant",
    UserId => "User",
    UserGroupId => "UserGroup",
    AddressBookId => "AddressBook",
    ContactId => "Contact",
    BusinessStatusId => "BusinessStatus",
    StatusChangeId => "StatusChange",
    GroupId => "Group",
    MembershipEventId => "MembershipEvent",
    ProductId => "Product",
    PriceListId => "PriceList",
    PriceItemId => "PriceItem",
    OrderId => "Order",
    EventId => "Event",
    ProcessAreaId => "ProcessArea",
    ProcessingAreaId => "ProcessingArea",
    MessageId => "Message",
    BusinessCalendarId => "BusinessCalendar",
    SlaContractId => "SlaContract",
    TicketId => "Ticket",
    WebhookEndpointId => "WebhookEndpoint",
    WebhookDeliveryId => "WebhookDelivery",
    SequenceId => "Sequence",
    EnrolmentId => "SequenceEnrolment",
    ConsentTextId => "ConsentText",
    WebFormId => "WebForm",
    ConsentEntryId => "ConsentEntry",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_ordered_by_creation() {
        let a = ContactId::new();
        let b = ContactId::new();
        assert_ne!(a, b);
        assert!(a < b, "UUIDv7 ids sort by creation time");
    }
}
