// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

extension UserPrivateKey {
    /// Makes a self-signed EFS certificate for this key, the way Windows does when a user first encrypts: subject
    /// `CN=name, OU=EFS File Encryption Certificate, L=EFS`, valid 100 years, with the EFS (or File Recovery)
    /// extended key usage.
    public func makeSelfSignedCertificate(name: String, recoveryAgent: Bool, now: Date = Date()) throws(FormatError) -> EFSCertificate {
        let signer = certificateSigningKey()
        let isRSA: Bool
        let sigAlg: Certificate.SignatureAlgorithm
        switch storage {
        case .rsa: (isRSA, sigAlg) = (true, .sha256WithRSAEncryption)
        case .p256: (isRSA, sigAlg) = (false, .ecdsaWithSHA256)
        case .p384: (isRSA, sigAlg) = (false, .ecdsaWithSHA384)
        }
        do {
            let subject = try DistinguishedName {
                CommonName(name)
                LocalityName("EFS")
                OrganizationalUnitName(recoveryAgent ? "EFS File Recovery Certificate" : "EFS File Encryption Certificate")
            }
            let usage = EFSCertificate.recoveryUsageOID
            let efs = EFSCertificate.efsUsageOID
            let cert = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: signer.publicKey,
                notValidBefore: now.addingTimeInterval(-300),
                notValidAfter: now.addingTimeInterval(100 * 365.25 * 86_400),
                issuer: subject,
                subject: subject,
                signatureAlgorithm: sigAlg,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    if isRSA {
                        KeyUsage(digitalSignature: true, keyEncipherment: true)
                    } else {
                        KeyUsage(digitalSignature: true, keyAgreement: true)
                    }
                    try ExtendedKeyUsage([ExtendedKeyUsage.Usage(oid: recoveryAgent ? usage : efs)])
                    SubjectKeyIdentifier(hash: signer.publicKey)
                },
                issuerPrivateKey: signer
            )
            var ser = DER.Serializer()
            try ser.serialize(cert)
            return try EFSCertificate(der: ser.serializedBytes)
        } catch let e as FormatError {
            throw e
        } catch {
            throw .malformed("cannot make a certificate: \(error)")
        }
    }
}
