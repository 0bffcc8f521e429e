// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSCore
import EFSSystem
import EFSTestSupport
import EFSWindows
import Foundation
import SystemPackage
import Testing

/// Keys of the frozen vectors, loaded once per identity and flavour (PKCS#12 KDFs are slow in debug builds).
enum FrozenKeys {
    nonisolated(unsafe) static var cache: [String: WindowsKey] = [:]
    static let lock = NSLock()

    static func load(_ id: String, _ flavour: String) throws -> WindowsKey {
        let file = WindowsVectors.keyFile(id, flavour)
        return try lock.withLock {
            if let k = cache[file] { return k }
            let k = try WindowsKey.load(TestFiles.read(WindowsVectors.path(file)), source: file, certificate: nil) {
                Passphrase(Array((WindowsVectors.password(file) ?? "").utf8))
            }
            cache[file] = k
            return k
        }
    }
}

@Suite("Windows interop: the library over the frozen vectors")
struct WindowsInteropTests {
    static let names = WindowsVectors.vectorNames

    func robs(_ v: [String: Any]) -> FilePath { WindowsVectors.path((v["files"] as? [String: String])?["robs"] ?? "") }

    @Test("every vector decrypts with each listed key, as PEM and as each PKCS#12 flavour", arguments: names)
    func decryptVector(name: String) throws {
        let v = WindowsVectors.vector(name)
        let streams = try #require(v["streams"] as? [[String: Any]])
        let data = streams.first { $0["name"] as? String == "::$DATA" }
        let dir = TemporaryDirectory()
        let input = try WindowsInput.detect(robs(v), efsInfo: nil)
        for o in try #require(v["openWith"] as? [[String: Any]]) {
            let id = try #require(o["keyId"] as? String)
            for flavour in WindowsVectors.flavours {
                let key = try FrozenKeys.load(id, flavour)
                let out = dir.appending("\(id)-\(flavour)")
                let r = try input.decrypt(key: key, toFile: out)
                #expect(r.isRecovery == (o["list"] as? String == "drf"), "\(id) \(flavour)")
                #expect(r.index == o["index"] as? Int)
                #expect(r.isWeak == (v["weak"] as? Bool))
                #expect(r.hasDataStream == (data != nil))
                if let data {
                    #expect(WindowsVectors.sha256(TestFiles.read(out)) == data["plaintextSHA256"] as? String, "\(id) \(flavour)")
                }
                for s in streams where s["name"] as? String != "::$DATA" {
                    let n = String((s["name"] as? String ?? "").dropFirst().dropLast(":$DATA".count))
                    let got = r.namedStreams.first { $0.name == n }?.value
                    #expect(got.map(WindowsVectors.sha256) == s["plaintextSHA256"] as? String, "\(name) :\(n)")
                    #expect(FileStatusMode.xattr(out, "user.\(n)").map(WindowsVectors.sha256) == s["plaintextSHA256"] as? String)
                }
                #expect(FileStatusMode.of(out) == 0o600)
            }
        }
        // The ntfs-3g form of the unnamed stream.
        if let data, let raw = (data["efsRaw"] as? [String: Any])?["file"] as? String {
            let efs = WindowsVectors.path(try #require((v["files"] as? [String: String])?["efs"]))
            let id = try #require((v["openWith"] as? [[String: Any]])?.first?["keyId"] as? String)
            let ntfs = try WindowsInput.detect(WindowsVectors.path(raw), efsInfo: efs)
            let out = dir.appending("ntfs3g")
            let r = try ntfs.decrypt(key: try FrozenKeys.load(id, "pfxModern"), toFile: out)
            #expect(r.size == UInt64(data["size"] as? Int ?? -1))
            #expect(WindowsVectors.sha256(TestFiles.read(out)) == data["plaintextSHA256"] as? String, "\(name) efs_raw")
        }
    }

    @Test("inspect reports the users, recovery agents and streams without a key", arguments: names)
    func inspect(name: String) throws {
        let v = WindowsVectors.vector(name)
        let info = try WindowsInput.detect(robs(v), efsInfo: nil).inspect()
        let efs = try #require(v["efs"] as? [String: Any])
        #expect(info.metadata.efsVersion == UInt32(efs["efsVersion"] as? Int ?? -1))
        for (list, entries) in [("ddf", info.metadata.ddf), ("drf", info.metadata.drf ?? [])] {
            let expected = try #require(efs[list] as? [[String: Any]])
            #expect(entries.count == expected.count)
            for (e, x) in zip(entries, expected) {
                #expect(e.publicKeyInfo.displayName == x["displayName"] as? String)
                #expect(e.publicKeyInfo.sid?.description == x["sid"] as? String)
                #expect(Hex.encode(e.publicKeyInfo.thumbprint) == x["thumbprint"] as? String)
                #expect(e.thumbprintDescription.replacingOccurrences(of: " ", with: "") == (x["thumbprint"] as? String)?.uppercased())
                #expect(e.publicKeyInfo.certificate.containerName == x["containerName"] as? String)
            }
        }
        let streams = try #require(v["streams"] as? [[String: Any]])
        #expect(info.streams.map(\.size) == streams.map { UInt64($0["size"] as? Int ?? -1) })
        // The bare $EFS gives the same metadata.
        let bare = try WindowsInput.detect(WindowsVectors.path(try #require((v["files"] as? [String: String])?["efs"])), efsInfo: nil)
        #expect(bare == .metadata(bare.path))
        #expect(try bare.inspect().metadata == info.metadata)
    }

    /// The EFS error code each checker error kind maps to.
    static func code(_ kind: String?) -> EFSError.Code? {
        switch kind {
        case nil: nil
        case "unsupportedVersion", "unknownVersion": .unsupportedVersion
        case "unsupportedPublicKeyType", "unsupportedAlgorithm", "unsupportedKeyWrap": .notSupported
        case "fekUnwrapFailed": .authenticationFailed
        case "wrongPassword": .wrongPassphrase
        case "noMatchingEntry": .noKey
        case "badFEK": .corrupt
        case let k? where k.hasPrefix("robs") || ["badSignature", "missingMetadataStream", "duplicateMetadataStream", "badMetadataStream", "misalignedOffset", "offsetsGoBackwards", "truncated", "badLength", "badSegmentHeader", "badPadding"].contains(k):
            .notExportFormat
        default: .corrupt
        }
    }

    @Test("malformed samples give the documented error, never a crash", arguments: WindowsVectors.list("malformed").compactMap { $0["name"] as? String })
    func malformed(name: String) throws {
        let m = try #require(WindowsVectors.list("malformed").first { $0["name"] as? String == name })
        let file = WindowsVectors.path(try #require(m["file"] as? String))
        let kind = m["errorKind"] as? String
        let input = m["input"] as? String
        let keyID = m["keyId"] as? String
        // Structure errors of a raw stream or an efs_raw file are "not in the export format" whatever their kind.
        let expected = input == "efs" || keyID != nil ? Self.code(kind) : .notExportFormat
        let key = try keyID.map { try FrozenKeys.load($0, "pfxModern") }
        let dir = TemporaryDirectory()
        let out = dir.appending("out")
        let run = { () throws(EFSError) in
            switch input {
            case "efsRaw":
                _ = try WindowsInput.detect(file, efsInfo: WindowsVectors.path("vectors/aes256-v2-size511.efs")).inspect()
            case "robs" where key != nil:
                _ = try WindowsInput.detect(file, efsInfo: nil).decrypt(key: key!, toFile: out)
            default:
                _ = try WindowsInput.detect(file, efsInfo: nil).inspect()
            }
        }
        if let expected {
            do throws(EFSError) {
                try run()
                Issue.record("\(name) was accepted")
            } catch {
                #expect(error.code == expected, "\(name): \(error.message)")
                if kind == "unsupportedVersion" { #expect(error.message.contains("not supported yet")) }
            }
        } else {
            try run()
        }
    }

    @Test("key errors: a wrong password, or a key that matches no entry", arguments: WindowsVectors.list("keyErrors").compactMap { $0["name"] as? String })
    func keyError(name: String) throws {
        let e = try #require(WindowsVectors.list("keyErrors").first { $0["name"] as? String == name })
        let keyFile = try #require(e["keyFile"] as? String)
        let password = e["password"] as? String ?? WindowsVectors.password(keyFile) ?? ""
        let efsinfo = (e["efsinfo"] as? String).map(WindowsVectors.path)
        let dir = TemporaryDirectory()
        do throws(EFSError) {
            let key = try WindowsKey.load(TestFiles.read(WindowsVectors.path(keyFile)), source: keyFile, certificate: nil) {
                Passphrase(Array(password.utf8))
            }
            let input = try WindowsInput.detect(WindowsVectors.path(e["file"] as? String ?? ""), efsInfo: efsinfo)
            _ = try input.decrypt(key: key, toFile: dir.appending("out"))
            Issue.record("\(name) succeeded")
        } catch {
            #expect(error.code == Self.code(e["errorKind"] as? String), "\(name): \(error.message)")
            if error.code == .noKey { #expect(error.message.contains("alice(alice@WIN10-VECTOR)") || error.message.contains("carol")) }
        }
    }
}

@Suite("Windows interop: keys")
struct WindowsKeyTests {
    @Test("an EC key is refused as not RSA (not as a wrong passphrase), encrypted or not")
    func ecKey() throws {
        let key = try UserPrivateKey.generate(.p256)
        for pem in [
            PrivateKeyFile.encode(key, passphrase: Passphrase(Array("pw".utf8)), iterations: PrivateKeyFile.minimumIterations),
            PrivateKeyFile.encode(key, passphrase: nil),
        ] {
            #expect(throws: EFSError(.notSupported, "")) {
                try WindowsKey.load(Array(pem.utf8), source: "ec.pem", certificate: nil) { Passphrase(Array("pw".utf8)) }
            }
        }
    }

    @Test("--cert chooses the entry: a bare PEM key with its certificate names the entry it fails on")
    func certificateChoosesEntry() throws {
        let key = try WindowsKey.load(
            TestFiles.read(WindowsVectors.path("keys/alice.key.pem")), source: "alice.key.pem",
            certificate: TestFiles.read(WindowsVectors.path("keys/alice.cert.der"))) { Passphrase([]) }
        #expect(key.thumbprint.map { Hex.encode($0) } == "e3e801b3595bba9d5bb698a3ff6dc4f7537558c2")
        let input = try WindowsInput.detect(WindowsVectors.path("malformed/key-efek-for-another-key.robs"), efsInfo: nil)
        let dir = TemporaryDirectory()
        do throws(EFSError) {
            _ = try input.decrypt(key: key, toFile: dir.appending("out"))
            Issue.record("decrypted")
        } catch {
            #expect(error.code == .authenticationFailed)
            #expect(error.message.contains("matches DDF entry 0 (alice(alice@WIN10-VECTOR)) by thumbprint"))
        }
        #expect(!TestFiles.exists(dir.appending("out")))
    }
}

/// The permission bits of a file.
enum FileStatusMode {
    static func of(_ p: FilePath) -> UInt32? { (try? Sys.stat(p)).map { $0.mode & 0o7777 } }

    /// An extended attribute of a file, or nil.
    static func xattr(_ p: FilePath, _ name: String) -> [UInt8]? {
        guard let fd = try? Sys.open(p, .readOnly) else { return nil }
        defer { Sys.close(fd) }
        return try? Sys.getXattr(fd, name)
    }
}

@Suite("Windows interop: import and export")
struct WindowsImportExportTests {
    /// Alice's key store (the frozen alice key, bob's and dra1's certificates), a volume whose recovery agent is an
    /// RSA agent, and its session.
    struct World {
        let dir = TemporaryDirectory()
        let store: KeyStore
        let session: EFSSession
        let agent: TestUser
        let vault: FilePath

        init() throws {
            store = KeyStore(root: dir.appending("alice-home"))
            let alice = try EFSCertificate(pemOrDER: TestFiles.read(WindowsVectors.path("keys/alice.cert.pem")))
            let key = try PrivateKeyFile.decode(TestFiles.read(WindowsVectors.path("keys/alice.key.pem"))) { Passphrase([]) }
            try store.add(alice, privateKey: key, passphrase: nil)
            try store.setCurrent(alice.thumbprint)
            for id in ["bob", "dra1"] {
                try store.add(try EFSCertificate(pemOrDER: TestFiles.read(WindowsVectors.path("keys/\(id).cert.pem"))))
            }
            session = EFSSession(keyStore: store, passphrase: nil)
            agent = try TestUser("agent", in: dir, kind: .rsa(bits: 2048), recoveryAgent: true)
            vault = dir.appending("vault")
            try FileManager.default.createDirectory(atPath: vault.string, withIntermediateDirectories: false)
            _ = try Volume.initialize(at: vault, recoveryAgents: [agent.certificate])
        }

        func sessionFor(_ id: String) throws -> EFSSession {
            let s = KeyStore(root: dir.appending("\(id)-home"))
            let cert = try EFSCertificate(pemOrDER: TestFiles.read(WindowsVectors.path("keys/\(id).cert.pem")))
            let key = try PrivateKeyFile.decode(TestFiles.read(WindowsVectors.path("keys/\(id).key.pem"))) { Passphrase([]) }
            try s.add(cert, privateKey: key, passphrase: nil)
            return EFSSession(keyStore: s, passphrase: nil)
        }

        func plaintext(_ s: EFSSession, _ p: FilePath) throws -> [UInt8] {
            let f = try s.open(at: p)
            defer { try? f.close() }
            return try f.read(at: 0, count: Int(f.size))
        }

        var litter: [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: vault.string)) ?? []).filter { TemporaryName.isTemporary($0) }
        }
    }

    static func input(_ name: String) throws -> WindowsInput {
        try WindowsInput.detect(WindowsVectors.path("vectors/\(name).robs"), efsInfo: nil)
    }

    static func expected(_ name: String, _ stream: String = "::$DATA") -> String? {
        let streams = WindowsVectors.vector(name)["streams"] as? [[String: Any]]
        return streams?.first { $0["name"] as? String == stream }?["plaintextSHA256"] as? String
    }

    @Test("import keeps the users and agents that have certificates; the volume's agent is added")
    func importUsers() throws {
        let w = try World()
        let key = try FrozenKeys.load("alice", "pfxModern")
        let path = w.vault.appending("report.txt")
        let r = try w.session.importWindows(try Self.input("aes256-v2-size511"), key: key, to: path)
        #expect(r.users.map(\.displayName) == ["alice", "bob"])
        #expect(r.recoveryAgents.map(\.displayName) == ["Administrator", "agent"])
        #expect(Set(r.skipped.map(\.name)) == ["carol(carol@W2K-OLD) 🔑 キャロル", "EFS Recovery Agent 2(recovery@CORP.EXAMPLE)"])
        #expect(WindowsVectors.sha256(try w.plaintext(w.session, path)) == Self.expected("aes256-v2-size511"))
        #expect(WindowsVectors.sha256(try w.plaintext(w.agent.session, path)) == Self.expected("aes256-v2-size511"))
        #expect(WindowsVectors.sha256(try w.plaintext(try w.sessionFor("bob"), path)) == Self.expected("aes256-v2-size511"))
        #expect(WindowsVectors.sha256(try w.plaintext(try w.sessionFor("dra1"), path)) == Self.expected("aes256-v2-size511"))
        let stranger = try TestUser("eve", in: w.dir)
        #expect(throws: EFSError(.noKey, "")) { try stranger.session.open(at: path) }
        // The plaintext is nowhere in the backing file.
        let plain = try w.plaintext(w.session, path)
        let backing = TestFiles.read(path)
        #expect(backing.count > plain.count)
        #expect(!(0...(backing.count - 64)).contains { Array(backing[$0..<($0 + 64)]) == Array(plain.prefix(64)) })
        // An existing target is refused, and nothing is left behind.
        #expect(throws: EFSError(.alreadyExists, "")) { try w.session.importWindows(try Self.input("aes256-v2-size511"), key: key, to: path) }
        #expect(w.litter.isEmpty)
    }

    @Test("import: named streams become encrypted extended attributes; 3DES and DESX data; big and sparse files")
    func importStreams() throws {
        let w = try World()
        let key = try FrozenKeys.load("alice", "pfxLegacy3DES")
        for name in ["aes256-v2-named-streams", "3des-v2-random", "aes256-v2-sparse", "aes256-v2-size65537", "desx-v1-size511"] {
            let path = w.vault.appending(name)
            let r = try w.session.importWindows(try Self.input(name), key: key, to: path)
            #expect(r.decryption.isWeak == name.hasPrefix("3des") || name.hasPrefix("desx"))
            #expect(WindowsVectors.sha256(try w.plaintext(w.session, path)) == Self.expected(name), "\(name)")
        }
        let f = try w.session.open(at: w.vault.appending("aes256-v2-named-streams"))
        defer { try? f.close() }
        #expect(try f.listExtendedAttributes() == ["user.Zone.Identifier", "user.secret"])
        #expect(try f.extendedAttribute("user.secret").map(WindowsVectors.sha256) == Self.expected("aes256-v2-named-streams", ":secret:$DATA"))
        // Sealed on disk: the backing attribute is not the plaintext.
        let stored = try #require(FileStatusMode.xattr(w.vault.appending("aes256-v2-named-streams"), NamedStreams.backingPrefix + "user.secret"))
        #expect(WindowsVectors.sha256(stored) != Self.expected("aes256-v2-named-streams", ":secret:$DATA"))
    }

    @Test("import fails cleanly: a key that matches nothing, no usable user certificate, outside a volume")
    func importFailures() throws {
        let w = try World()
        let path = w.vault.appending("x")
        #expect(throws: EFSError(.noKey, "")) {
            try w.session.importWindows(try Self.input("aes256-v2-size512"), key: try FrozenKeys.load("dra1", "pfxModern"), to: path)
        }
        // carol and dra2 only: carol's certificate is RSA-1024, which swift-efs does not use.
        #expect(throws: EFSError(.fileNotFound, "")) {
            try w.session.importWindows(try Self.input("3des-v2-size512"), key: try FrozenKeys.load("carol", "pfxModern"), to: path)
        }
        // A directory's raw stream has no data to make a file of.
        #expect(throws: EFSError(.notSupported, "")) {
            try w.session.importWindows(try Self.input("aes256-v2-directory"), key: try FrozenKeys.load("alice", "pkcs8"), to: path)
        }
        #expect(throws: EFSError(.notOnVolume, "")) {
            try w.session.importWindows(try Self.input("aes256-v2-size512"), key: try FrozenKeys.load("alice", "pfxModern"), to: w.dir.appending("outside"))
        }
        #expect(!TestFiles.exists(path))
        #expect(w.litter.isEmpty)
    }

    @Test("export: a Windows raw stream and the ntfs-3g pair that our reader and the recovery agent open")
    func export() throws {
        let w = try World()
        let name = "aes256-v2-named-streams"
        let path = w.vault.appending("doc")
        _ = try w.session.importWindows(try Self.input(name), key: try FrozenKeys.load("alice", "pfxModern"), to: path)
        let out = w.dir.appending("doc.robs")
        let r = try w.session.exportWindows(path, to: out.string)
        #expect(r.users.map(\.displayName) == ["alice", "bob"])
        #expect(Set(r.recoveryAgents.map(\.displayName)) == ["Administrator", "agent"])
        #expect(r.streams.map(\.name) == ["::$DATA", "Zone.Identifier", "secret"])
        let agentKey = try WindowsKey.load(
            TestFiles.read(w.agent.store.root.appending("keys/\(w.agent.certificate.thumbprint.hex).pem")), source: "agent",
            certificate: Array(w.agent.certificate.pem.utf8)) { Passphrase([]) }
        for key in [try FrozenKeys.load("alice", "pkcs8"), try FrozenKeys.load("bob", "pfxLegacyRC2"), agentKey] {
            let d = try WindowsInput.detect(out, efsInfo: nil).decrypt(key: key, toFile: w.dir.appending("back"))
            #expect(d.algorithm == .aes256)
            #expect(WindowsVectors.sha256(TestFiles.read(w.dir.appending("back"))) == Self.expected(name))
            #expect(d.namedStreams.first { $0.name == "secret" }.map { WindowsVectors.sha256($0.value) } == Self.expected(name, ":secret:$DATA"))
        }
        // ntfs-3g form.
        let raw = w.dir.appending("doc.efs_raw"), info = w.dir.appending("doc.efs")
        let n = try w.session.exportWindows(path, to: raw.string, ntfs3gEFSInfo: info)
        #expect(n.skippedStreams.count == 2)
        _ = try WindowsInput.detect(raw, efsInfo: info).decrypt(key: try FrozenKeys.load("alice", "pfxModern"), toFile: w.dir.appending("back2"))
        #expect(WindowsVectors.sha256(TestFiles.read(w.dir.appending("back2"))) == Self.expected(name))
        if WindowsVectors.hasPythonChecker {
            let pw = w.dir.write("pw", Array((WindowsVectors.password("keys/alice.modern.pfx") ?? "").utf8))
            let c = WindowsVectors.runChecker([out.string, "--key", WindowsVectors.path("keys/alice.modern.pfx").string, "--password-file", pw.string, "--strict"])
            #expect(c.status == 0, "\(c.output)")
            #expect(c.output.contains(Self.expected(name) ?? "?"))
        }
    }

    @Test("export refuses a file whose users all have EC keys")
    func exportEC() throws {
        let w = try World()
        let ec = try TestUser("ec", in: w.dir, kind: .p256)
        let p = w.vault.appending("ec.txt")
        TestFiles.write(p, Array("hello".utf8))
        try ec.session.encryptFile(at: p)
        #expect(throws: EFSError(.notSupported, "")) { try ec.session.exportWindows(p, to: w.dir.appending("ec.robs").string) }
        #expect(!TestFiles.exists(w.dir.appending("ec.robs")))
    }
}
