// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Dispatch
import EFSCore
import Synchronization

/// New file keys made ahead of time, for the files and directory markers the mount creates.
///
/// A new encrypted file needs a fresh FEK wrapped for the current key and every recovery agent: for an EC key one
/// HPKE encapsulation per certificate (two scalar multiplications each), for RSA one public-key encryption. That was
/// the largest part of a create through the mount (`bench/mount` row 4, an untar, is one create per file), and a
/// create is one synchronous request for the program that makes the file. So a background queue keeps up to
/// ``capacity`` of them ready for the recipients last asked for, and a create takes one; when the pool is empty
/// the caller makes its own, as before.
///
/// The pool serves one recipient list at a time. A create for another list (`efs key use` while mounted, or another
/// volume) empties it and refills it for the new list, so a file never gets keys wrapped for certificates other
/// than the ones it asked for. The keys wait in memory only, in the same zeroing types as every other FEK, and
/// are dropped with the session.
final class PrewrappedKeys: Sendable {
    typealias Made = (fek: FileEncryptionKey, metadata: FileMetadata)

    /// How many keys are kept ready; refilling starts when fewer than half are left.
    let capacity: Int
    private let make: @Sendable (_ users: [EFSCertificate], _ agents: [EFSCertificate]) throws(EFSError) -> Made
    private let queue = DispatchQueue(label: "swift-efs.prewrapped-keys", qos: .utility)
    private let state = Mutex(State())

    private struct State: ~Copyable {
        /// The recipients the ready keys are wrapped for (users, then agents, by thumbprint).
        var recipients: [Thumbprint] = []
        var ready: [Made] = []
        /// Bumped whenever `ready` is emptied for other recipients, so a refill in flight for the old ones stops.
        var generation = 0
        /// The generation a refill is running or queued for, if any.
        var refilling: Int?
    }

    init(capacity: Int = 32, make: @escaping @Sendable ([EFSCertificate], [EFSCertificate]) throws(EFSError) -> Made) {
        self.capacity = max(1, capacity)
        self.make = make
    }

    /// A fresh key for `users` and `agents`: one made ahead of time if the pool has one for exactly these
    /// recipients, else one made now. Either way the pool is then refilled in the background.
    func take(users: [EFSCertificate], agents: [EFSCertificate]) throws(EFSError) -> Made {
        let recipients = users.map(\.thumbprint) + agents.map(\.thumbprint)
        let (taken, startRefill, generation) = state.withLock { s -> (Made?, Bool, Int) in
            if s.recipients != recipients {
                s.recipients = recipients
                s.ready.removeAll()
                s.generation += 1
            }
            let taken = s.ready.popLast()
            let start = s.refilling != s.generation && s.ready.count < (capacity + 1) / 2
            if start { s.refilling = s.generation }
            return (taken, start, s.generation)
        }
        if startRefill {
            queue.async { self.refill(users: users, agents: agents, generation: generation) }
        }
        if let taken { return taken }
        return try make(users, agents)
    }

    /// Number of keys ready now (tests).
    var readyCount: Int { state.withLock { $0.ready.count } }

    private func refill(users: [EFSCertificate], agents: [EFSCertificate], generation: Int) {
        while true {
            let wanted = state.withLock { s -> Bool in
                guard s.generation == generation, s.ready.count < capacity else {
                    if s.refilling == generation { s.refilling = nil }
                    return false
                }
                return true
            }
            guard wanted else { return }
            // A certificate that cannot be wrapped for now fails the same way in the caller's own attempt, which
            // reports it; the background just stops.
            guard let made = try? make(users, agents) else {
                state.withLock { s in if s.refilling == generation { s.refilling = nil } }
                return
            }
            state.withLock { s in
                if s.generation == generation, s.ready.count < capacity { s.ready.append(made) }
            }
        }
    }
}
