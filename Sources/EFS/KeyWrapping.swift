// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import Foundation
import Synchronization

/// How a session wraps the FEKs of the files it encrypts: for an EC certificate from a ``SharedEncapsulation`` it
/// keeps for that certificate, made again after ``maximumUses`` wraps or ``lifetime``; for RSA with one RSA-OAEP
/// encryption each.
///
/// An HPKE encapsulation of its own for every file (two scalar multiplications per certificate) was the largest
/// cost of creating a file through the mount, and the mount used to wrap keys ahead of time on a background queue
/// to hide it. With a shared encapsulation a wrap is one HKDF expansion and one AES-GCM seal of 32 bytes, cheap
/// enough to do inline. File-format.md §4.3 (algorithms 4 and 5); threat-model.md says what sharing an `enc`
/// reveals.
final class KeyWrapping: Sendable {
    /// Wraps from one encapsulation before a new one is made.
    let maximumUses: Int
    /// Age after which an encapsulation is not used again (and its exporter secret is released).
    let lifetime: Duration

    private struct Shared {
        let encapsulation: SharedEncapsulation
        let made: ContinuousClock.Instant
        var uses = 0
    }

    private let shared = Mutex<[Thumbprint: Shared]>([:])

    init(maximumUses: Int = 1024, lifetime: Duration = .seconds(60)) {
        self.maximumUses = max(1, maximumUses)
        self.lifetime = lifetime
    }

    /// The DDF or DRF entry of `fek` for `certificate`.
    func wrap(_ fek: FileEncryptionKey, for certificate: EFSCertificate) throws(FormatError) -> KeyEntry {
        let now = ContinuousClock.now
        // Drop what has aged out or is used up first, RSA wraps included: an exporter secret opens every FEK wrapped
        // from it, so none is kept past its use. (An idle session relies on ``releaseExpired()``.)
        releaseExpired(now)
        if certificate.algorithm == .rsaOAEPSHA256 { return try certificate.wrap(fek) }
        let reused = shared.withLock { all -> SharedEncapsulation? in
            guard var s = all[certificate.thumbprint], s.uses < maximumUses,
                  s.encapsulation.certificate == certificate else { return nil }
            s.uses += 1
            all[certificate.thumbprint] = s
            return s.encapsulation
        }
        if let reused { return try reused.wrap(fek) }
        // Set up outside the lock: two scalar multiplications, which other creates need not wait for.
        guard let made = try certificate.sharedEncapsulation() else { return try certificate.wrap(fek) }
        shared.withLock { $0[certificate.thumbprint] = Shared(encapsulation: made, made: now, uses: 1) }
        return try made.wrap(fek)
    }

    /// Releases (and so zeroes) the encapsulations that have aged out or reached ``maximumUses``. The mount calls
    /// this every 0.2 s, so an idle mount holds no exporter secret for longer than ``lifetime`` plus that.
    func releaseExpired(_ now: ContinuousClock.Instant = .now) {
        shared.withLock { all in
            // Usually nothing is due: look before rebuilding (this runs on every wrap).
            let due = { (s: Shared) in now - s.made >= self.lifetime || s.uses >= self.maximumUses }
            if all.values.contains(where: due) { all = all.filter { !due($0.value) } }
        }
    }

    /// Encapsulations held now (tests).
    var heldCount: Int { shared.withLock { $0.count } }
}
