"""Product limits and column lengths, in one place so they are easy to correct.

Sources: ``docs/domain.md`` §2 (column lengths) and §3/§5 (Microsoft's documented limits).
Values marked UNCONFIRMED were not settled by a public source.
"""

from datetime import date

QUEUE_NAME = 200  # queue.name
QUEUE_DESCRIPTION = 2000  # queue.description (UNCONFIRMED: Dataverse memo default)
FB_ACCOUNT_NAME = 100  # msdyn_ocfbapplication.msdyn_name
FB_APPLICATION_ID = 100  # msdyn_fbapplicationid
# msdyn_ocfbpage.msdyn_fbpagename and msdyn_fbpageid: MaxLength 100 (MicrosoftDocs/dynamics-365-
# customer-engagement ce/customer-service/develop/reference/entities/msdyn_ocfbpage.md @a5f498d2).
FB_PAGE_NAME = 100
FB_PAGE_ID = 100
GBM_ACCOUNT_NAME = 100  # partner account msdyn_name (UNCONFIRMED)
GBM_PARTNER_ID = 100  # msdyn_partneraccountid
GBM_AGENT_FIELD = 100  # agent msdyn_name, msdyn_agentid, msdyn_brandid
# msdyn_liveworkstream.msdyn_name: MaxLength 100 (the same repository,
# ce/developer/reference/entities/msdyn_liveworkstream.md
# @13744220ba5ade462ccea77e5b535772f5ce7468).
WORKSTREAM_NAME = 100
# msdyn_decisionruleset.msdyn_name: MaxLength 200 (MicrosoftDocs/dynamics-365-customer-engagement
# ce/developer/reference/entities/msdyn_decisionruleset.md
# @029760a1cac0ed6b102341889b0f7464e1b51ec0).
RULE_SET_NAME = 200
# msdyn_ocliveworkstreamcontextvariable.msdyn_name: MaxLength 100 (the same repository,
# ce/developer/reference/entities/msdyn_ocliveworkstreamcontextvariable.md
# @69d734cd59edd7e8ee6f408b828cdfe1db2bfe61).
CONTEXT_VARIABLE_NAME = 100

MAX_RULES_PER_SET = 100
MAX_ROUTE_TO_QUEUE_SETS = 1
MAX_CLASSIFICATION_SETS = 10
MAX_ALLOCATION_QUEUES = 5

FACEBOOK_TOKEN_MAX_AGE_DAYS = 60
FACEBOOK_TOKEN_WARN_DAYS = 15  # warn this many days before the 60-day refresh is due

GBM_RETIRED_ON = date(2024, 7, 31)

MAX_PARALLELISM = 52
"""Dataverse's limit of concurrent requests per user (docs/domain.md §4)."""
DEFAULT_PARALLELISM = 8

# The chat widget (msdyn_livechatconfig, FS-LCC in reconciler.dataverse.tables): its name,
# title and subtitle are 100 characters. An allowed domain is written as a widget location's
# msdyn_domainvalue (FS-LCWL: 200) and as its title msdyn_name (100): 100.
WIDGET_TEXT = 100
WIDGET_DOMAIN = 100

# The capacity profile (msdyn_capacityprofile, REF-CP in reconciler.dataverse.tables): its name
# is 100 characters; msdyn_defaultmaxunits is an integer from 0 to 100.
CAPACITY_PROFILE_NAME = 100
CAPACITY_PROFILE_MAX_UNITS = 100

# The automated message (msdyn_ocsystemmessage, MicrosoftDocs/dynamics-365-customer-engagement
# ce/developer/reference/entities/msdyn_ocsystemmessage.md @014a0e53…): its name is 100
# characters; a text per language is a localization row's msdyn_localizedtext, 1000 characters
# (ce/developer/reference/entities/msdyn_oclocalizationdata.md @a6691cbc…), less than the
# message's own msdyn_messagetext (2000).
AUTOMATED_MESSAGE_NAME = 100
AUTOMATED_MESSAGE_TEXT = 1000

# A user's sign-in name: systemuser.domainname, MaxLength 1024 (MicrosoftDocs/powerapps-docs
# powerapps-docs/developer/data-platform/reference/entities/systemuser.md @06570acd…).
SIGN_IN_NAME = 1024
