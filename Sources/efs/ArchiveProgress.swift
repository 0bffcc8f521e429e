// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSSystem

/// The progress line of `backup`, `restore` and `verify`: on standard error, only when it is a terminal, redrawn at
/// most ten times a second. Issues are printed on their own lines, the progress line cleared first.
final class ArchiveProgress {
    let verb: String
    let enabled: Bool
    private var lastDraw: ContinuousClock.Instant?
    private var shown = false
    /// Least time between two redraws.
    static let interval = Duration.milliseconds(100)

    init(_ verb: String) {
        self.verb = verb
        enabled = Sys.isTerminal(.standardError)
    }

    func update(_ p: EFSBackup.Progress) {
        guard enabled else { return }
        let now = ContinuousClock.now
        if let lastDraw, now - lastDraw < Self.interval { return }
        lastDraw = now
        var tail = p.path
        if tail.count > 40 { tail = "…" + tail.suffix(39) }
        draw("\(verb): \(p.entries) files, \(Self.format(p.bytes))  \(tail)")
    }

    /// Prints an issue as `efs: PATH: MESSAGE` (or `efs: warning: …`).
    func issue(_ i: EFSBackup.Issue) {
        clear()
        CLI.warn(i.isWarning ? "warning: \(i)" : "\(i)")
    }

    func clear() {
        guard shown else { return }
        write("\r\u{1B}[K")
        shown = false
    }

    private func draw(_ line: String) {
        write("\r\u{1B}[K" + line)
        shown = true
    }

    private func write(_ s: String) {
        var text = s
        text.withUTF8 { try? Sys.writeAll(.standardError, Array($0)) }
    }

    static func format(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(bytes)
        var i = 0
        while v >= 1024, i < units.count - 1 {
            v /= 1024
            i += 1
        }
        if i == 0 { return "\(bytes) B" }
        let tenths = (v * 10).rounded() / 10
        return "\(tenths) \(units[i])"
    }
}
