//! Request authentication: the canonical signed message, signing (ssh-agent, key files, tokens), verification, the replay window and principals. It knows nothing about HTTP frameworks or databases.
