// Package verify is evident's offline verifier. It checks evidence with no
// network access and no server code: it imports neither net/http nor bbolt
// nor the log package (TestLean keeps it so).
//
// It verifies log entries ([EntryVerifier]: their RFC 3161 tokens over the
// signature, with package rfc3161, the signer's chain at the token's time, the signature over
// the payload digest), in-toto links and layouts ([ParseLink],
// [ParseLayout], [CheckLayout]) and whole supply chains ([SupplyChain]:
// bundles proved in the log and cosigned by witnesses, against a layout
// and the trust root). Certificates are always checked at the
// time the timestamp proves, with the whole genTime ± accuracy window inside
// every certificate's validity — never at the wall-clock time — so evidence
// stays verifiable long after short-lived certificates expired.
package verify

import ()
