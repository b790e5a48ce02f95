//! Mutations of the sequences area (admin: a sequence's steps run on every member).

use crate::error::ApiError;
use crate::graphql::sequences::*;
use crate::graphql::{data, ids};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use cohort_domain::ids::{GroupId, SequenceId};
use cohort_store::{SequenceInput, SequencePatch, StepInput};

/// One step of a sequence: an action and its delay.
#[derive(InputObject)]
pub struct SequenceStepInput {
    /// ISO 8601 duration after the previous step was due (the first: after enrolment), e.g.
    /// `P0D`, `P3D`, `PT12H`, `P1M`.
    pub delay: String,
    /// What the step does; give the field the action needs.
    pub action: SequenceAction,
    /// `EMIT` only.
    pub template_key: Option<String>,
    /// `ADD_TO_GROUP` / `REMOVE_FROM_GROUP` only.
    pub group_id: Option<ID>,
    /// `SET_BUSINESS_STATUS` only (absent: clear the status).
    pub business_status_key: Option<String>,
}

/// The input of `createSequence`.
#[derive(InputObject)]
pub struct CreateSequenceInput {
    /// The sequence's name (1 to 200 characters).
    pub name: String,
    /// The group whose joins enrol contacts.
    pub start_group_id: ID,
    /// Joining a subgroup of the start group enrols too.
    #[graphql(default)]
    pub include_subgroups: bool,
    /// Leaving the start group stops the enrolment (default `true`).
    #[graphql(default = true)]
    pub stop_on_leave: bool,
    /// For a public start group: only memberships resting on confirmed consent enrol.
    #[graphql(default = true)]
    pub require_consent: bool,
    /// What joining again does once an enrolment has ended (default `IGNORE`).
    #[graphql(default_with = "SequenceRejoin::Ignore")]
    pub rejoin: SequenceRejoin,
    /// The steps, in order.
    pub steps: Vec<SequenceStepInput>,
}

/// The input of `updateSequence`: absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateSequenceInput {
    /// The sequence to change.
    pub id: ID,
    /// A new name.
    pub name: Option<String>,
    /// A new start group (for joins from now on).
    pub start_group_id: Option<ID>,
    /// Whether joining a subgroup of the start group enrols too.
    pub include_subgroups: Option<bool>,
    /// Whether leaving the start group stops the enrolment.
    pub stop_on_leave: Option<bool>,
    /// For a public start group: whether only memberships resting on confirmed consent enrol.
    pub require_consent: Option<bool>,
    /// What joining again does once an enrolment has ended.
    pub rejoin: Option<SequenceRejoin>,
    /// New steps make a new version; enrolments under way finish on theirs.
    pub steps: Option<Vec<SequenceStepInput>>,
}

/// The input of `pauseSequence`.
#[derive(InputObject)]
pub struct PauseSequenceInput {
    /// The sequence to pause or resume.
    pub id: ID,
    /// `false` resumes it.
    #[graphql(default = true)]
    pub paused: bool,
}

/// The result of a change to a sequence.
#[derive(SimpleObject)]
pub struct SequencePayload {
    /// The sequence as it now stands.
    pub sequence: Sequence,
}

fn group_id(id: &ID, field: &'static str) -> Result<GroupId, ApiError> {
    ids::decode(GroupId::TAG, id).map(GroupId).map_err(|_| ApiError::bad_input(field, "is not a group id"))
}

fn steps(input: Vec<SequenceStepInput>) -> Result<Vec<StepInput>, ApiError> {
    input
        .into_iter()
        .map(|s| {
            Ok(StepInput {
                delay: s.delay,
                action: s.action.into(),
                template_key: s.template_key,
                group_id: s.group_id.as_ref().map(|g| group_id(g, "steps.groupId")).transpose()?,
                status_key: s.business_status_key,
            })
        })
        .collect()
}

#[derive(Default)]
pub struct SequenceMutation;

#[Object]
impl SequenceMutation {
    /// Creates a follow-up sequence (admin). Contacts already in the start group are not
    /// enrolled: it starts with the joins that follow.
    async fn create_sequence(
        &self,
        ctx: &Context<'_>,
        input: CreateSequenceInput,
    ) -> async_graphql::Result<SequencePayload> {
        let i = SequenceInput {
            name: input.name,
            start_group_id: group_id(&input.start_group_id, "startGroupId")?,
            include_subgroups: input.include_subgroups,
            stop_on_leave: input.stop_on_leave,
            require_consent: input.require_consent,
            rejoin: input.rejoin.into(),
            steps: steps(input.steps)?,
        };
        let s = data(ctx)?.create_sequence(&i).await.map_err(ApiError::from)?;
        Ok(SequencePayload { sequence: Sequence(s) })
    }

    /// Changes a sequence (admin).
    async fn update_sequence(
        &self,
        ctx: &Context<'_>,
        input: UpdateSequenceInput,
    ) -> async_graphql::Result<SequencePayload> {
        let id = SequenceId(ids::decode(SequenceId::TAG, &input.id)?);
        let p = SequencePatch {
            name: input.name,
            start_group_id: input.start_group_id.as_ref().map(|g| group_id(g, "startGroupId")).transpose()?,
            include_subgroups: input.include_subgroups,
            stop_on_leave: input.stop_on_leave,
            require_consent: input.require_consent,
            rejoin: input.rejoin.map(Into::into),
            steps: input.steps.map(steps).transpose()?,
        };
        let s = data(ctx)?.update_sequence(id, &p).await.map_err(ApiError::from)?;
        Ok(SequencePayload { sequence: Sequence(s) })
    }

    /// Pauses or resumes a sequence (admin).
    async fn pause_sequence(
        &self,
        ctx: &Context<'_>,
        input: PauseSequenceInput,
    ) -> async_graphql::Result<SequencePayload> {
        let id = SequenceId(ids::decode(SequenceId::TAG, &input.id)?);
        let s = data(ctx)?.pause_sequence(id, input.paused).await.map_err(ApiError::from)?;
        Ok(SequencePayload { sequence: Sequence(s) })
    }
}
