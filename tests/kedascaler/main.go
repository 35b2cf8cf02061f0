// Command kedalag asks KEDA's own Kafka scaler (pkg/scalers of
// github.com/kedacore/keda/v2) what it would tell the Horizontal Pod
// Autoscaler, given the trigger metadata and authentication parameters the
// chart renders. It exists so the tests judge the chart's KEDA settings by the
// code that will read them in a cluster, not by our reading of KEDA's docs.
//
// Input on standard input, one JSON object:
//
//	{"metadata": {...trigger metadata...}, "authParams": {...resolved from the TriggerAuthentication...}}
//
// Output on standard output, one JSON object:
//
//	{"metricName": "...", "metric": 12, "target": 50, "active": true}
//
// metric is the value KEDA reports (the total lag, capped at partitions ×
// lagThreshold unless idle consumers are allowed), target the average value
// per replica, active whether the lag is past activationLagThreshold.
// A failure is {"error": "..."} and exit status 1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/kedacore/keda/v2/pkg/scalers"
	"github.com/kedacore/keda/v2/pkg/scalers/scalersconfig"
)

type input struct {
	Metadata   map[string]string `json:"metadata"`
	AuthParams map[string]string `json:"authParams"`
}

type output struct {
	MetricName string  `json:"metricName"`
	Metric     float64 `json:"metric"`
	Target     float64 `json:"target"`
	Active     bool    `json:"active"`
}

func main() {
	if err := run(); err != nil {
		_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"error": err.Error()})
		os.Exit(1)
	}
}

func run() error {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		return fmt.Errorf("reading the input: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	scaler, err := scalers.NewKafkaScaler(ctx, &scalersconfig.ScalerConfig{
		ScalableObjectName:      "consumer",
		ScalableObjectNamespace: "default",
		ScalableObjectType:      "ScaledObject",
		GlobalHTTPTimeout:       10 * time.Second,
		TriggerName:             "kafka-lag",
		TriggerType:             "kafka",
		TriggerMetadata:         in.Metadata,
		ResolvedEnv:             map[string]string{},
		AuthParams:              in.AuthParams,
	})
	if err != nil {
		return err
	}
	defer func() { _ = scaler.Close(ctx) }()
	specs := scaler.GetMetricSpecForScaling(ctx)
	if len(specs) != 1 || specs[0].External == nil {
		return fmt.Errorf("expected one external metric, got %d", len(specs))
	}
	spec := specs[0].External
	values, active, err := scaler.GetMetricsAndActivity(ctx, spec.Metric.Name)
	if err != nil {
		return err
	}
	if len(values) != 1 {
		return fmt.Errorf("expected one metric value, got %d", len(values))
	}
	return json.NewEncoder(os.Stdout).Encode(output{
		MetricName: spec.Metric.Name,
		Metric:     values[0].Value.AsApproximateFloat64(),
		Target:     spec.Target.AverageValue.AsApproximateFloat64(),
		Active:     active,
	})
}
