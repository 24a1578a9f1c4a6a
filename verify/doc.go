// Package verify is evident's offline verifier. It checks evidence with no
// network access and no server code: it imports neither net/http nor bbolt
// nor the log package (TestLean keeps it so).
//
// It verifies log entries ([EntryVerifier]: their RFC 3161 tokens over the
// signature, with package rfc3161, a threshold of them from distinct TSAs
// within a bound on their genTimes' spread, the signer's chain at every
// counted token's time, the signature over the signed message — the
// payload or its DSSE PAE — or, without the payload, over its digest),
// in-toto links and layouts ([ParseLink], [ParseLayout], [CheckLayout]) and
// whole supply chains ([SupplyChain]: bundles proved in the log and
// cosigned by witnesses, against a layout and the trust root). Certificates
// are always checked at the time the timestamps prove, with the whole
// genTime ± accuracy window inside every certificate's validity — never at
// the wall-clock time — so evidence stays verifiable long after
// short-lived certificates expired.
package verify
