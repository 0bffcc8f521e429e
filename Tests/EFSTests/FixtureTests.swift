// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSCore
import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// Files written by format v1 must open forever. These fixtures were made once by `Fixtures/make-fixtures.sh`.
@Suite("Frozen v1 fixtures")
struct FixtureTests {
    static var root: FilePath {
        FilePath(Bundle.module.resourcePath!).appending("Fixtures")
    }

    /// A writable copy (git does not keep modes; the key store wants 0700).
    func copy() throws -> (TemporaryDirectory, FilePath) {
        let dir = TemporaryDirectory()
        let dst = dir.appending("Fixtures")
        try FileManager.default.copyItem(atPath: Self.root.string, toPath: dst.string)
        return (dir, dst)
    }

    func sums(_ root: FilePath, _ name: String = "SHA256SUMS") -> [String: String] {
        let text = String(decoding: TestFiles.read(root.appending("v1/\(name)")), as: UTF8.self)
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            out[String(parts[1])] = String(parts[0])
        }
        return out
    }

    @Test("alice and the recovery agent open every v1 file", arguments: ["alice-home", "ra-home"])
    func opens(home: String) throws {
        let (dir, root) = try copy()
        _ = dir
        let session = EFSSession(keyStore: KeyStore(root: root.appending("v1/\(home)")), passphrase: nil)
        let expected = sums(root)
        #expect(expected.count == 4)
        for (name, sum) in expected {
            let file = try session.open(at: root.appending("v1/volume/docs/\(name)"))
            let bytes = try file.read(at: 0, count: 1 << 20)
            #expect(sha256Hex(bytes) == sum, "\(name)")
        }
        #expect(try session.fileEncryptionStatus(at: root.appending("v1/volume/docs")) == .encrypted)
        #expect(try session.queryRecoveryAgents(at: root.appending("v1/volume/docs/hello.txt")).map(\.displayName) == ["recovery agent"])
    }

    /// `Fixtures/make-shared-fixtures.sh`: wrap algorithm 4, added to v1 on 2026-12-03.
    @Test("alice and the recovery agent open the files wrapped from a shared encapsulation", arguments: ["alice-home", "ra-home"])
    func opensShared(home: String) throws {
        let (dir, root) = try copy()
        _ = dir
        let session = EFSSession(keyStore: KeyStore(root: root.appending("v1/\(home)")), passphrase: nil)
        let expected = sums(root, "SHARED-SHA256SUMS")
        #expect(expected.count == 2)
        var encs = Set<[UInt8]>()
        for (name, sum) in expected {
            let path = root.appending("v1/volume/shared/\(name)")
            #expect(sha256Hex(try session.open(at: path).read(at: 0, count: 1 << 20)) == sum, "\(name)")
            let entries = try session.queryUsers(at: path) + session.queryRecoveryAgents(at: path)
            #expect(entries.map(\.algorithm) == [.hpkeP256Shared, .hpkeP256Shared])
            let fd = try Sys.open(path, .readOnly)
            defer { Sys.close(fd) }
            encs.insert(Array(try EncryptedFileInfo.read(fd, path: path).metadata.users[0].wrappedKey[0..<65]))
        }
        #expect(encs.count == 1, "the two files were encrypted by one command, from one encapsulation")
        #expect(try session.fileEncryptionStatus(at: root.appending("v1/volume/shared")) == .encrypted)
    }

    @Test("corrupt fixtures are rejected with the named error", arguments: [
        ("flipped-data-block.bin", "authenticationFailed"), ("truncated-at-block.bin", "authenticationFailed"),
        ("bad-header-checksum.bin", "corrupt"), ("version-2.bin", "unsupportedVersion"), ("metadata-edited.bin", "authenticationFailed"),
    ])
    func corrupt(name: String, code: String) throws {
        let (dir, root) = try copy()
        _ = dir
        let session = EFSSession(keyStore: KeyStore(root: root.appending("v1/alice-home")), passphrase: nil)
        do {
            let file = try session.open(at: root.appending("corrupt/\(name)"))
            _ = try file.read(at: 0, count: 1 << 20)
            Issue.record("\(name) was accepted")
        } catch let e as EFSError {
            #expect(e.code.description == code, "\(name): \(e)")
        }
    }
}

func sha256Hex(_ bytes: [UInt8]) -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    let inPipe = Pipe(), outPipe = Pipe()
    p.standardInput = inPipe
    p.standardOutput = outPipe
    try! p.run()
    inPipe.fileHandleForWriting.write(Data(bytes))
    try! inPipe.fileHandleForWriting.close()
    let out = outPipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: out, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
}
