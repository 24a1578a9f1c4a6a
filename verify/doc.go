// Package verify is evident's offline verifier. It checks evidence with no
// network access and no server code: it imports neither net/http nor bbolt
// nor the log package (TestLean keeps it so).
//
// It verifies RFC 3161 timestamp tokens ([Timestamp]: RFC 3161, RFC 5652
// CMS, RFC 5816 ESSCertIDv2), log entries ([EntryVerifier]: the tokens over
// the signature, a threshold of them from distinct TSAs within a bound on
// their genTimes' spread, the signer's chain at every counted token's time,
// the signature over the signed message — the payload or its DSSE PAE — or,
// without the payload, over its digest) and supply chains ([SupplyChain]).
// Certificates are always checked at the time the timestamps prove, with
// the whole genTime ± accuracy window inside every certificate's validity —
// never at the wall-clock time — so evidence stays verifiable long after
// short-lived certificates expired.
package verify
