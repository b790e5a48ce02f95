//! Mutations of the routing area.

use crate::error::ApiError;
use crate::graphql::routing::*;
use crate::graphql::{data, ids, patch};
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cohort_domain::ids::{ContactId, GroupId, MessageId, ProcessAreaId, ProcessingAreaId, UserGroupId, UserId};
use cohort_domain::routing::Responsibility;
use cohort_store::{MessageInput, ProcessAreaInput, ProcessAreaPatch, ProcessingAreaPatch, Reassignment};

fn user_id(id: &ID) -> Result<UserId, ApiError> {
    Ok(UserId(ids::decode(UserId::TAG, id)?))
}
fn user_group_id(id: &ID) -> Result<UserGroupId, ApiError> {
    Ok(UserGroupId(ids::decode(UserGroupId::TAG, id)?))
}
fn queue_id(id: &ID) -> Result<ProcessingAreaId, ApiError> {
    Ok(ProcessingAreaId(ids::decode(ProcessingAreaId::TAG, id)?))
}
fn area_id(id: &ID) -> Result<ProcessAreaId, ApiError> {
    Ok(ProcessAreaId(ids::decode(ProcessAreaId::TAG, id)?))
}

/// The input of `createProcessingArea`.
#[derive(InputObject)]
pub struct CreateProcessingAreaInput {
    /// The queue's name (1 to 200 characters, unique in the tenant).
    pub name: String,
    /// What the queue is for (optional).
    pub description: Option<String>,
    /// Restrict the queue (and its messages) to this user group.
    pub user_group_id: Option<ID>,
}

/// The input of `updateProcessingArea`: absent fields stay as they are; `null` clears.
#[derive(InputObject)]
pub struct UpdateProcessingAreaInput {
    /// The queue to change.
    pub id: ID,
    /// A new name.
    pub name: Option<String>,
    /// What the queue is for (`null` clears it).
    pub description: MaybeUndefined<String>,
    /// Restrict the queue to this user group (`null` lifts the restriction).
    pub user_group_id: MaybeUndefined<ID>,
}

/// The result of `createProcessingArea` and `updateProcessingArea`.
#[derive(SimpleObject)]
pub struct ProcessingAreaPayload {
    /// The queue as it now stands.
    pub processing_area: ProcessingArea,
}

/// The input of `createProcessArea`.
#[derive(InputObject)]
pub struct CreateProcessAreaInput {
    /// Lower-case letters, digits, `-` and `_` (`helpdesk`, `sales-dach`); never changes.
    pub key: String,
    /// Display name.
    pub name: String,
    /// The module-default queue.
    pub default_processing_area_id: ID,
    /// The worker messages get when no group names one (optional).
    pub default_worker_id: Option<ID>,
    /// The user group messages are restricted to when no group names one (optional).
    pub default_user_group_id: Option<ID>,
}

/// The input of `updateProcessArea`: absent fields stay as they are; `null` clears a default. The
/// key never changes.
#[derive(InputObject)]
pub struct UpdateProcessAreaInput {
    /// The process area to change.
    pub id: ID,
    /// A new display name.
    pub name: Option<String>,
    /// A new default queue.
    pub default_processing_area_id: Option<ID>,
    /// A new default worker (`null` clears it).
    pub default_worker_id: MaybeUndefined<ID>,
    /// A new default user group (`null` clears it).
    pub default_user_group_id: MaybeUndefined<ID>,
}

/// The result of `createProcessArea` and `updateProcessArea`.
#[derive(SimpleObject)]
pub struct ProcessAreaPayload {
    /// The process area as it now stands.
    pub process_area: ProcessArea,
}

/// The input of `setGroupResponsibility`: what the group sets for one process area, replacing what
/// it set before.
#[derive(InputObject)]
pub struct SetGroupResponsibilityInput {
    /// The group whose contacts it applies to (subgroups inherit it unless they set their own).
    pub group_id: ID,
    /// The process area it applies to.
    pub process_area_id: ID,
    /// Each optional, at least one given.
    pub worker_id: Option<ID>,
    /// Restrict the communication to this user group.
    pub user_group_id: Option<ID>,
    /// The queue messages go to.
    pub processing_area_id: Option<ID>,
}

/// The result of `setGroupResponsibility`.
#[derive(SimpleObject)]
pub struct SetGroupResponsibilityPayload {
    /// The responsibility as it now stands.
    pub responsibility: GroupResponsibility,
}

/// The input of `clearGroupResponsibility`.
#[derive(InputObject)]
pub struct ClearGroupResponsibilityInput {
    /// The group whose responsibility ends (it then inherits its ancestors').
    pub group_id: ID,
    /// The process area to clear.
    pub process_area_id: ID,
}

/// The result of `clearGroupResponsibility`.
#[derive(SimpleObject)]
pub struct ClearGroupResponsibilityPayload {
    /// `false` when the group set nothing for the area.
    pub cleared: bool,
}

/// The input of `receiveMessage`.
#[derive(InputObject)]
pub struct ReceiveMessageInput {
    /// The sender, if known. Otherwise give `senderEmail`: it is matched against the contacts
    /// you can see.
    pub contact_id: Option<ID>,
    /// The sender's address (matched against the contacts you can see when `contactId` is not
    /// given).
    pub sender_email: Option<String>,
    /// Process-area key; default `helpdesk`.
    pub process_area: Option<String>,
    /// How the message reached you.
    pub channel: MessageChannel,
    /// One line, at most 998 characters.
    pub subject: String,
    /// At most 1 MB; CRLF line ends are stored as LF.
    pub body: String,
    /// Only the recipient may read the body of a private message.
    #[graphql(default)]
    pub private: bool,
    /// Required for private messages.
    pub recipient_id: Option<ID>,
    /// Default: now.
    pub received_at: Option<DateTime<Utc>>,
    /// Makes the call idempotent: the same external id from the same caller is stored once.
    pub external_id: Option<String>,
}

/// The result of `receiveMessage`.
#[derive(SimpleObject)]
pub struct ReceiveMessagePayload {
    /// The message's global id (also when the caller may not read it).
    pub message_id: ID,
    /// `true` when this caller already delivered a message with this external id (that one is
    /// returned; nothing new was stored).
    pub duplicate: bool,
    /// The message, if the caller may read it (routing can put it into a queue restricted to a
    /// user group the caller is not in).
    pub message: Option<Message>,
}

/// The input of `reassignMessage`: absent fields stay as they are.
#[derive(InputObject)]
pub struct ReassignMessageInput {
    /// The message to move.
    pub message_id: ID,
    /// A worker, or `null` to unassign.
    pub worker_id: MaybeUndefined<ID>,
    /// A user group, or `null` to lift the restriction.
    pub user_group_id: MaybeUndefined<ID>,
    /// Move it to this queue.
    pub processing_area_id: Option<ID>,
    /// Why (kept in the assignment history).
    pub note: Option<String>,
}

/// The result of `reassignMessage`.
#[derive(SimpleObject)]
pub struct ReassignMessagePayload {
    /// `null` when the caller moved it beyond what they may read.
    pub message: Option<Message>,
}

/// The input of `setMessageSettings`.
#[derive(InputObject)]
pub struct SetMessageSettingsInput {
    /// Withhold private messages' subjects (not only their bodies) from everyone but the
    /// recipient.
    pub hide_private_subjects: bool,
}

/// The tenant's settings for messages.
#[derive(SimpleObject)]
pub struct MessageSettings {
    /// Whether private messages' subjects are withheld from everyone but the recipient.
    pub hide_private_subjects: bool,
}

fn patch_id<T>(m: MaybeUndefined<ID>, f: fn(&ID) -> Result<T, ApiError>) -> Result<Option<Option<T>>, ApiError> {
    patch(m).map(|o| o.as_ref().map(f).transpose()).transpose()
}

#[derive(Default)]
pub struct RoutingMutation;

#[Object]
impl RoutingMutation {
    /// Creates a queue (admin).
    async fn create_processing_area(
        &self,
        ctx: &Context<'_>,
        input: CreateProcessingAreaInput,
    ) -> async_graphql::Result<ProcessingAreaPayload> {
        let ug = input.user_group_id.as_ref().map(user_group_id).transpose()?;
        let q = data(ctx)?
            .create_processing_area(&input.name, input.description.as_deref(), ug)
            .await
            .map_err(ApiError::from)?;
        Ok(ProcessingAreaPayload { processing_area: ProcessingArea(q) })
    }

    /// Renames, describes or (un)restricts a queue (admin).
    async fn update_processing_area(
        &self,
        ctx: &Context<'_>,
        input: UpdateProcessingAreaInput,
    ) -> async_graphql::Result<ProcessingAreaPayload> {
        let id = queue_id(&input.id)?;
        let p = ProcessingAreaPatch {
            name: input.name,
            description: patch(input.description),
            user_group: patch_id(input.user_group_id, user_group_id)?,
        };
        let q = data(ctx)?.update_processing_area(id, &p).await.map_err(ApiError::from)?;
        Ok(ProcessingAreaPayload { processing_area: ProcessingArea(q) })
    }

    /// Creates a process area with its module defaults (admin).
    async fn create_process_area(
        &self,
        ctx: &Context<'_>,
        input: CreateProcessAreaInput,
    ) -> async_graphql::Result<ProcessAreaPayload> {
        let i = ProcessAreaInput {
            key: input.key,
            name: input.name,
            default_processing_area: queue_id(&input.default_processing_area_id)?,
            default_worker: input.default_worker_id.as_ref().map(user_id).transpose()?,
            default_user_group: input.default_user_group_id.as_ref().map(user_group_id).transpose()?,
        };
        let a = data(ctx)?.create_process_area(&i).await.map_err(ApiError::from)?;
        Ok(ProcessAreaPayload { process_area: ProcessArea(a) })
    }

    /// Changes a process area's name or defaults (admin; the key stays).
    async fn update_process_area(
        &self,
        ctx: &Context<'_>,
        input: UpdateProcessAreaInput,
    ) -> async_graphql::Result<ProcessAreaPayload> {
        let id = area_id(&input.id)?;
        let p = ProcessAreaPatch {
            name: input.name,
            default_processing_area: input.default_processing_area_id.as_ref().map(queue_id).transpose()?,
            default_worker: patch_id(input.default_worker_id, user_id)?,
            default_user_group: patch_id(input.default_user_group_id, user_group_id)?,
        };
        let a = data(ctx)?.update_process_area(id, &p).await.map_err(ApiError::from)?;
        Ok(ProcessAreaPayload { process_area: ProcessArea(a) })
    }

    /// Sets who is responsible for a group's contacts in one process area (MANAGE on the
    /// group's home book). Subgroups that set none inherit it.
    async fn set_group_responsibility(
        &self,
        ctx: &Context<'_>,
        input: SetGroupResponsibilityInput,
    ) -> async_graphql::Result<SetGroupResponsibilityPayload> {
        let g = GroupId(ids::decode(GroupId::TAG, &input.group_id)?);
        let area = area_id(&input.process_area_id)?;
        let r = Responsibility {
            worker: input.worker_id.as_ref().map(user_id).transpose()?,
            user_group: input.user_group_id.as_ref().map(user_group_id).transpose()?,
            processing_area: input.processing_area_id.as_ref().map(queue_id).transpose()?,
        };
        let rec = data(ctx)?.set_group_responsibility(g, area, r).await.map_err(ApiError::from)?;
        Ok(SetGroupResponsibilityPayload { responsibility: GroupResponsibility(rec) })
    }

    /// Removes a group's own responsibility for an area (it inherits again).
    async fn clear_group_responsibility(
        &self,
        ctx: &Context<'_>,
        input: ClearGroupResponsibilityInput,
    ) -> async_graphql::Result<ClearGroupResponsibilityPayload> {
        let g = GroupId(ids::decode(GroupId::TAG, &input.group_id)?);
        let area = area_id(&input.process_area_id)?;
        let cleared = data(ctx)?.clear_group_responsibility(g, area).await.map_err(ApiError::from)?;
        Ok(ClearGroupResponsibilityPayload { cleared })
    }

    /// Stores an inbound message and routes it (see `route`).
    async fn receive_message(
        &self,
        ctx: &Context<'_>,
        input: ReceiveMessageInput,
    ) -> async_graphql::Result<ReceiveMessagePayload> {
        let i = MessageInput {
            contact: input.contact_id.map(|c| ids::decode(ContactId::TAG, &c).map(ContactId)).transpose()?,
            sender_email: input.sender_email,
            process_area: input.process_area,
            channel: input.channel.into(),
            subject: input.subject,
            body: input.body,
            private: input.private,
            recipient: input.recipient_id.as_ref().map(user_id).transpose()?,
            received_at: input.received_at,
            external_id: input.external_id,
        };
        let r = data(ctx)?.receive_message(&i).await.map_err(ApiError::from)?;
        Ok(ReceiveMessagePayload {
            message_id: ids::encode(MessageId::TAG, r.id.0),
            duplicate: r.duplicate,
            message: r.message.map(Message),
        })
    }

    /// Moves a message to another worker, user group or queue (admin, or WRITE on the contact's
    /// address book); appended to its assignment history.
    async fn reassign_message(
        &self,
        ctx: &Context<'_>,
        input: ReassignMessageInput,
    ) -> async_graphql::Result<ReassignMessagePayload> {
        let id = MessageId(ids::decode(MessageId::TAG, &input.message_id)?);
        let r = Reassignment {
            worker: patch_id(input.worker_id, user_id)?,
            user_group: patch_id(input.user_group_id, user_group_id)?,
            processing_area: input.processing_area_id.as_ref().map(queue_id).transpose()?,
            note: input.note,
        };
        let m = data(ctx)?.reassign_message(id, &r).await.map_err(ApiError::from)?;
        Ok(ReassignMessagePayload { message: m.map(Message) })
    }

    /// Whether private messages withhold their subject too (admin).
    async fn set_message_settings(
        &self,
        ctx: &Context<'_>,
        input: SetMessageSettingsInput,
    ) -> async_graphql::Result<MessageSettings> {
        data(ctx)?.set_hide_private_subjects(input.hide_private_subjects).await.map_err(ApiError::from)?;
        Ok(MessageSettings { hide_private_subjects: input.hide_private_subjects })
    }
}
