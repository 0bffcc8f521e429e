// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSSystem
import SystemPackage

/// An EFS volume: a directory tree with a recovery policy.
///
/// ```
/// VOLUME/.efs/            0755
///   volume.conf           "format = 1" and "id = <32 hex digits>"
///   recovery-policy.pem   the recovery agents' certificates (PEM, possibly none)
/// ```
/// Policy changes apply to files encrypted afterwards; `efs rekey` brings existing files up to date.
/// `Documentation/file-format.md` §7.
public struct Volume: Sendable {
    public static let configDirectoryName = ".efs"
    static let configFileName = "volume.conf"
    static let policyFileName = "recovery-policy.pem"
    /// Largest recovery policy file read.
    static let maximumPolicySize = Limits.maximumEntriesPerList * 48 * 1024

    public let root: FilePath
    public let id: String
    public private(set) var recoveryAgents: [EFSCertificate]

    var configDirectory: FilePath { root.appending(Self.configDirectoryName) }

    /// Makes `directory` a volume.
    public static func initialize(at directory: FilePath, recoveryAgents: [EFSCertificate]) throws(EFSError) -> Volume {
        let st = try mapErrors(directory, "cannot initialise") { try Sys.stat(directory) }
        guard st.kind == .directory else { throw EFSError(.invalidArgument, "\(directory) is not a directory") }
        let root = try mapErrors(directory, "cannot resolve") { try Sys.realpath(directory) }
        if let existing = try find(containing: root, includeSelf: true) {
            throw EFSError(.alreadyExists, "\(root) is already inside the EFS volume \(existing.root)")
        }
        let config = root.appending(configDirectoryName)
        try mapErrors(config, "cannot create") { try Sys.mkdir(config, mode: 0o755) }
        var g = SystemRandomNumberGenerator()
        let id = Hex.encode((0..<16).map { _ in UInt8.random(in: 0...255, using: &g) })
        var v = Volume(root: root, id: id, recoveryAgents: [])
        try v.setRecoveryAgents(recoveryAgents)
        try FileIO.writeAtomically(config.appending(configFileName), Array("# swift-efs volume\nformat = 1\nid = \(id)\n".utf8), mode: 0o644)
        return v
    }

    /// Finds the volume that contains `path` (which need not exist yet).
    public static func find(containing path: FilePath, includeSelf: Bool = true) throws(EFSError) -> Volume? {
        var dir = path
        if (try? Sys.stat(path))?.kind != .directory || !includeSelf { dir = path.removingLastComponent() }
        if dir.isEmpty { dir = "." }
        guard let resolved = try? Sys.realpath(dir) else { return nil }
        // Up the resolved (absolute, canonical) path as a string: in a debug build each FilePath component operation
        // re-checks swift-system's invariants over the whole path, which made this walk most of `encrypt -r`'s time.
        var cur = resolved.string
        while true {
            let base = cur == "/" ? "" : cur
            // A regular file only: some network file systems answer for any name (smbnetfs's top level is the
            // network's hosts and their shares, so `.efs/volume.conf` there "exists" as a directory that reads EIO).
            if (try? Sys.lstat(FilePath("\(base)/\(configDirectoryName)/\(configFileName)")))?.kind == .regular {
                return try load(root: FilePath(cur))
            }
            guard cur != "/", let slash = cur.lastIndex(of: "/") else { return nil }
            cur = slash == cur.startIndex ? "/" : String(cur[..<slash])
        }
    }

    /// Loads the volume rooted at `root`.
    public static func load(root: FilePath) throws(EFSError) -> Volume {
        let conf = root.appending(configDirectoryName).appending(configFileName)
        let text = String(decoding: try FileIO.read(conf, maximum: 4096), as: UTF8.self)
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let l = line.trimmingPrefix(while: { $0 == " " })
            if l.hasPrefix("#") || l.isEmpty { continue }
            let kv = l.split(separator: "=", maxSplits: 1).map { String($0).trimmingWhitespace() }
            guard kv.count == 2 else { throw EFSError(.corrupt, "\(conf): malformed line '\(l)'") }
            fields[kv[0]] = kv[1]
        }
        guard fields["format"] == "1" else {
            throw EFSError(.unsupportedVersion, "\(conf): volume format \(fields["format"] ?? "?") is not supported (this build reads 1)")
        }
        guard let id = fields["id"], Hex.decode(id)?.count == 16 else { throw EFSError(.corrupt, "\(conf): missing or bad volume id") }
        let policy = root.appending(configDirectoryName).appending(policyFileName)
        var agents: [EFSCertificate] = []
        if FileIO.exists(policy) {
            let pem = String(decoding: try FileIO.read(policy, maximum: maximumPolicySize), as: UTF8.self)
            var seen = Set<Thumbprint>()
            agents = try parseCertificates(pem, source: policy).filter { seen.insert($0.thumbprint).inserted }
            guard agents.count <= Limits.maximumEntriesPerList else {
                throw EFSError(.corrupt, "\(policy): more than \(Limits.maximumEntriesPerList) recovery agents")
            }
        }
        return Volume(root: root, id: id, recoveryAgents: agents)
    }

    /// Replaces the recovery policy (atomically).
    public mutating func setRecoveryAgents(_ agents: [EFSCertificate]) throws(EFSError) {
        var seen = Set<Thumbprint>()
        let unique = agents.filter { seen.insert($0.thumbprint).inserted }
        guard unique.count <= Limits.maximumEntriesPerList else {
            throw EFSError(.invalidArgument, "at most \(Limits.maximumEntriesPerList) recovery agents")
        }
        let text = "# swift-efs recovery policy: one certificate per recovery agent\n" + unique.map(\.pem).joined()
        try FileIO.writeAtomically(configDirectory.appending(Self.policyFileName), Array(text.utf8), mode: 0o644)
        recoveryAgents = unique
    }

    /// Whether `path` (absolute, resolved) is the volume's config directory or inside it.
    func isConfigPath(_ path: FilePath) -> Bool {
        // As strings (both are resolved, so normalised): cheaper than comparing components in a debug build.
        let config = configDirectory.string
        return path.string == config || path.string.hasPrefix(config + "/")
    }
}

/// Parses every CERTIFICATE block of a PEM text.
func parseCertificates(_ pem: String, source: FilePath) throws(EFSError) -> [EFSCertificate] {
    var out: [EFSCertificate] = []
    var rest = Substring(pem)
    let begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----"
    while let b = rest.firstRange(of: begin) {
        guard let e = rest[b.upperBound...].firstRange(of: end) else { throw EFSError(.corrupt, "\(source): unterminated certificate") }
        let block = String(rest[b.lowerBound..<e.upperBound])
        do { out.append(try EFSCertificate(pemOrDER: Array(block.utf8))) } catch {
            throw EFSError(.corrupt, "\(source): \(error.message)", cause: error)
        }
        rest = rest[e.upperBound...]
    }
    return out
}
