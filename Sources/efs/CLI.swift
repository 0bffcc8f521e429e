// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSCore
import EFSSystem
import Foundation
import SystemPackage

/// Shared helpers of the subcommands: error reporting, passphrases, output.
enum CLI {
    /// Prints `efs: message` to standard error.
    static func warn(_ message: String) {
        var text = "efs: \(message)\n"
        text.withUTF8 { try? Sys.writeAll(.standardError, Array($0)) }
    }

    /// Runs `body` for each item, reporting failures and continuing; exits with the code of the last failure.
    static func forEach<T>(_ items: [T], _ body: (T) throws -> Void) throws {
        var status: Int32 = 0
        for item in items {
            do { try body(item) } catch { status = report(error) }
        }
        if status != 0 { throw ExitCode(status) }
    }

    /// Runs `body`; on failure prints one line and exits with the mapped status.
    static func run(_ body: () throws -> Void) throws {
        do { try body() } catch let e as ExitCode { throw e } catch { throw ExitCode(report(error)) }
    }

    static func report(_ error: any Error) -> Int32 {
        if let e = error as? EFSError {
            warn(e.message)
            return ExitStatus.code(for: e)
        }
        if let e = error as? ExitCode { return e.rawValue }
        warn("\(error)")
        return ExitStatus.failure
    }

    /// Reads a whole small file named on the command line (`-` is standard input).
    static func readInput(_ name: String, maximum: Int = Limits.maximumKeyFileSize) throws -> [UInt8] {
        if name == "-" {
            var out: [UInt8] = []
            while true {
                let chunk = try Sys.read(.standardInput, count: 65_536)
                if chunk.isEmpty { break }
                out += chunk
                if out.count > maximum { throw EFSError(.invalidArgument, "standard input is larger than \(maximum) bytes") }
            }
            return out
        }
        do {
            let fd = try Sys.open(FilePath(name), .readOnly)
            defer { Sys.close(fd) }
            let bytes = try Sys.pread(fd, count: maximum + 1, at: 0)
            guard bytes.count <= maximum else { throw EFSError(.invalidArgument, "\(name) is larger than \(maximum) bytes") }
            return bytes
        } catch let e as Errno {
            throw EFSError(e == .noSuchFileOrDirectory ? .fileNotFound : .accessDenied, "\(name): \(e)")
        }
    }

    /// Writes `bytes` to a file (mode 0600 for secrets, 0644 otherwise), or to standard output for `-`.
    static func writeOutput(_ name: String, _ bytes: [UInt8], secret: Bool) throws {
        if name == "-" {
            try Sys.writeAll(.standardOutput, bytes)
            return
        }
        do {
            let fd = try Sys.open(FilePath(name), [.writeOnly, .create, .truncate], mode: FilePermissions(rawValue: secret ? 0o600 : 0o644))
            defer { Sys.close(fd) }
            if secret { try Sys.fchmod(fd, 0o600) }
            try Sys.writeAll(fd, bytes)
        } catch let e as Errno {
            throw EFSError(.accessDenied, "\(name): \(e)")
        }
    }

    /// A certificate named on the command line: a PEM or DER file, or else a thumbprint (or unique prefix of 8+ hex
    /// digits) of a certificate in the key store.
    static func certificate(_ name: String) throws -> EFSCertificate {
        if name == "-" || (try? Sys.stat(FilePath(name))) != nil {
            let bytes = try readInput(name)
            do { return try EFSCertificate(pemOrDER: bytes) } catch {
                throw EFSError(error.code == .unsupportedAlgorithm ? .notSupported : .corrupt, "\(name): \(error.message)")
            }
        }
        let store = KeyStore(root: KeyStore.defaultLocation())
        let cleaned = name.filter { $0 != " " && $0 != ":" }
        guard cleaned.count >= 8, cleaned.allSatisfy(\.isHexDigit) else {
            throw EFSError(.fileNotFound, "\(name): no such certificate file, and not a thumbprint")
        }
        return try store.certificate(try store.resolve(name))
    }

    static func json(_ value: Any) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}

/// Where passphrases come from: `--passphrase-file`, `$EFS_PASSPHRASE_FILE`, or a prompt on the terminal.
struct PassphraseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Read the passphrase from the first line of FILE ('-' for standard input).", valueName: "FILE"))
    var passphraseFile: String?

    var fileName: String? { passphraseFile ?? Sys.environment("EFS_PASSPHRASE_FILE").flatMap { $0.isEmpty ? nil : $0 } }

    /// A provider for unlocking keys.
    func provider() -> PassphraseProvider {
        let file = fileName
        let cache = PassphraseCache()
        return { request in
            if let file {
                if let p = cache.value { return p }
                let p = Passphrase(fileContents: try CLI.readInput(file, maximum: 4096))
                cache.value = p
                return p
            }
            let prompt = request.attempt > 1 ? "Wrong passphrase. Passphrase for \(request.displayName) (\(request.thumbprint)): "
                : "Passphrase for \(request.displayName) (\(request.thumbprint)): "
            guard var line = Sys.readSecretFromTerminal(prompt: prompt) else {
                throw EFSError(.wrongPassphrase, "the key \(request.displayName) is passphrase-protected and no terminal is attached: use --passphrase-file FILE or EFS_PASSPHRASE_FILE")
            }
            defer { Sys.secureZero(&line) }
            return Passphrase(line)
        }
    }

    /// The password of a key file (`what` names it): from the file, or asked once on the terminal.
    func passphrase(for what: String) throws -> Passphrase {
        if let file = fileName { return Passphrase(fileContents: try CLI.readInput(file, maximum: 4096)) }
        guard var line = Sys.readSecretFromTerminal(prompt: "Password for \(what): ") else {
            throw EFSError(.wrongPassphrase, "\(what) needs a password and no terminal is attached: use --passphrase-file FILE or EFS_PASSPHRASE_FILE")
        }
        defer { Sys.secureZero(&line) }
        return Passphrase(line)
    }

    /// A new passphrase for protecting a key: from the file, or asked twice on the terminal.
    func newPassphrase(what: String) throws -> Passphrase {
        if let file = fileName {
            let p = Passphrase(fileContents: try CLI.readInput(file, maximum: 4096))
            guard !p.isEmpty else { throw EFSError(.wrongPassphrase, "\(file): empty passphrase: use --no-passphrase to store the key unprotected") }
            return p
        }
        guard var first = Sys.readSecretFromTerminal(prompt: "New passphrase for \(what): ") else {
            throw EFSError(.wrongPassphrase, "no terminal to ask for a passphrase: use --passphrase-file FILE, EFS_PASSPHRASE_FILE or --no-passphrase")
        }
        defer { Sys.secureZero(&first) }
        guard var second = Sys.readSecretFromTerminal(prompt: "Repeat the passphrase: ") else {
            throw EFSError(.wrongPassphrase, "no terminal")
        }
        defer { Sys.secureZero(&second) }
        guard first == second else { throw EFSError(.wrongPassphrase, "the passphrases differ") }
        guard !first.isEmpty else { throw EFSError(.wrongPassphrase, "empty passphrase: use --no-passphrase to store the key unprotected") }
        return Passphrase(first)
    }

    func session() -> EFSSession {
        EFSSession(keyStore: KeyStore(root: KeyStore.defaultLocation()), passphrase: provider(), maximumAttempts: fileName == nil ? 3 : 1)
    }
}

/// Holds a passphrase read from a file so it is read once per run.
final class PassphraseCache: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: Passphrase?
    var value: Passphrase? {
        get { lock.withLock { _value } }
        set { lock.withLock { _value = newValue } }
    }
}
