package passkey

import "github.com/google/uuid"

// DefaultName is the name of a passkey whose authenticator the AAGUID
// table does not know (or that did not tell).
const DefaultName = "Passkey"

// authenticators names common passkey providers and security keys by
// AAGUID, for the default name of a new passkey and its notice mail. From
// the community list passkeydeveloper/passkey-authenticator-aaguids;
// names only, never a security decision (that would take the FIDO
// Metadata Service).
var authenticators = map[uuid.UUID]string{
	uuid.MustParse("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"): "Google Password Manager",
	uuid.MustParse("adce0002-35bc-c60a-648b-0b25f1f05503"): "Chrome on Mac",
	uuid.MustParse("b5397666-4885-aa6b-cebf-e52262a439a2"): "Chromium Browser",
	uuid.MustParse("08987058-cadc-4b81-b6e1-30de50dcbe96"): "Windows Hello",
	uuid.MustParse("9ddd1817-af5a-4672-a2b9-3e3dd95000a9"): "Windows Hello",
	uuid.MustParse("6028b017-b1d4-4c02-b4b3-afcdafc96bb2"): "Windows Hello",
	uuid.MustParse("fbfc3007-154e-4ecc-8c0b-6e020557d7bd"): "iCloud Keychain",
	uuid.MustParse("dd4ec289-e01d-41c9-bb89-70fa845d4bf2"): "iCloud Keychain (Managed)",
	uuid.MustParse("53414d53-554e-4700-0000-000000000000"): "Samsung Pass",
	uuid.MustParse("bada5566-a7aa-401f-bd96-45619a55120d"): "1Password",
	uuid.MustParse("d548826e-79b4-db40-a3d8-11116f7e8349"): "Bitwarden",
	uuid.MustParse("531126d6-e717-415c-9320-3d9aa6981239"): "Dashlane",
	uuid.MustParse("0ea242b4-43c4-4a1b-8b17-dd6d0b6baec6"): "Keeper",
	uuid.MustParse("f3809540-7f14-49c1-a8b3-8f813b225541"): "Enpass",
	uuid.MustParse("50726f74-6f6e-5061-7373-50726f746f6e"): "Proton Pass",
	uuid.MustParse("fdb141b2-5d84-443e-8a35-4698c205a502"): "KeePassXC",
	uuid.MustParse("cb69481e-8ff7-4039-93ec-0a2729a154a8"): "YubiKey 5 Series",
	uuid.MustParse("ee882879-721c-4913-9775-3dfcce97072a"): "YubiKey 5 Series",
	uuid.MustParse("2fc0579f-8113-47ea-b116-bb5a8db9202a"): "YubiKey 5 Series with NFC",
}

// Authenticator is the name of the authenticator model aaguid stands for,
// "" when the table does not know it (and for the zero AAGUID, which
// authenticators send when they do not say).
func Authenticator(aaguid uuid.UUID) string { return authenticators[aaguid] }
