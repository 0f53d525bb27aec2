"""Every table, one module per aggregate; importing this registers them all on ``Base``."""

from switchboard.db.models.agent import Agent, AgentVersion
from switchboard.db.models.automation import FlowNode, Tool
from switchboard.db.models.batch import Batch, BatchRow, BatchStatus, RowStatus
from switchboard.db.models.call import Call, CallDirection, CallEvent, CallStatus, TranscriptTurn
from switchboard.db.models.campaign import (
    Campaign,
    CampaignStatus,
    DncEntry,
    Prospect,
    ProspectState,
)
from switchboard.db.models.job import Job, JobId, JobStatus
from switchboard.db.models.provider import ProviderCredential
from switchboard.db.models.telephony import CarrierAccount, PhoneNumber, WebhookNonce
from switchboard.db.models.workspace import ApiKey, Membership, Role, User, Workspace

__all__ = [
    "Agent",
    "AgentVersion",
    "ApiKey",
    "Batch",
    "BatchRow",
    "BatchStatus",
    "Call",
    "CallDirection",
    "CallEvent",
    "CallStatus",
    "Campaign",
    "CampaignStatus",
    "CarrierAccount",
    "DncEntry",
    "FlowNode",
    "Job",
    "JobId",
    "JobStatus",
    "Membership",
    "PhoneNumber",
    "Prospect",
    "ProspectState",
    "ProviderCredential",
    "Role",
    "RowStatus",
    "Tool",
    "TranscriptTurn",
    "User",
    "WebhookNonce",
    "Workspace",
]
