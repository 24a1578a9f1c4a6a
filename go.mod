module github.com/evident-dev/evident

go 1.26.0

require (
	github.com/digitorus/timestamp v0.0.0-20250524132541-c45532741eea
	github.com/transparency-dev/formats v0.1.1
	github.com/transparency-dev/merkle v0.0.2
	go.etcd.io/bbolt v1.5.0
	golang.org/x/mod v0.43.0
)

require (
	github.com/digitorus/pkcs7 v0.0.0-20230713084857-e76b763bdc49 // indirect
	golang.org/x/sys v0.45.0 // indirect
)
