// Command kubeapi runs a real Kubernetes API server on loopback, for the
// chart's server-side dry run: kube-apiserver from k8s.io/kubernetes, on an
// etcd embedded from go.etcd.io/etcd/server/v3 (the version kube-apiserver's
// own client is built against). No controller, scheduler or kubelet runs:
// objects are admitted, validated and defaulted, and nothing acts on them.
//
//	kubeapi -data-dir DIR -etcd-client-port N -etcd-peer-port M -- KUBE-APISERVER-FLAGS...
//
// The flags after -- are kube-apiserver's own; --etcd-servers is added.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	dataDir := flag.String("data-dir", "", "where etcd keeps its data")
	clientPort := flag.Int("etcd-client-port", 0, "etcd's client port on 127.0.0.1")
	peerPort := flag.Int("etcd-peer-port", 0, "etcd's peer port on 127.0.0.1")
	flag.Parse()
	if *dataDir == "" || *clientPort == 0 || *peerPort == 0 {
		fmt.Fprintln(os.Stderr, "kubeapi: -data-dir, -etcd-client-port and -etcd-peer-port are required")
		os.Exit(2)
	}
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", *clientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", *peerPort)}

	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(*dataDir, "etcd")
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "warn"
	// A throwaway store for one test run.
	cfg.UnsafeNoFsync = true
	etcd, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeapi: etcd:", err)
		os.Exit(1)
	}
	select {
	case <-etcd.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		fmt.Fprintln(os.Stderr, "kubeapi: etcd not ready after 60 s")
		os.Exit(1)
	}

	command := app.NewAPIServerCommand()
	command.SetArgs(append([]string{"--etcd-servers=" + clientURL.String()}, flag.Args()...))
	code := cli.Run(command)
	etcd.Close()
	os.Exit(code)
}
