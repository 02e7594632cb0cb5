"""Access projects: applications, decisions, agreements and the projects' life (safe projects).

Modules, each holding one concept (every function takes the caller's ``Session`` and an
:class:`~enclave.core.policy.Actor`, checks the one policy module, and writes its audit event
and notifications in the caller's transaction unless it says otherwise):

- :mod:`~access_requests.machine`: statuses, the transition table, the one approval rule, facts;
- :mod:`~access_requests.applications`: the form, drafts, edits, the PDF protocol, submission;
- :mod:`~access_requests.decisions`: review, changes, approval (one or two staff), rejection,
  ethics committee opinions;
- :mod:`~access_requests.agreements`: data-use agreement versions and acceptances;
- :mod:`~access_requests.membership`: membership and extension requests;
- :mod:`~access_requests.lifecycle`: suspension, reinstatement, revocation, expiry, closure;
- :mod:`~access_requests.safe_people`: accreditations about to expire;
- :mod:`~access_requests.notifications`: the outbox, SMTP delivery, in-app notifications;
- :mod:`~access_requests.workflow`: the names other packages use, and ``transition``.
"""
