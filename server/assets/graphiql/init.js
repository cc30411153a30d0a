// Starts GraphiQL on Herald's endpoints (served from /graphql/assets, no CDN).
(function () {
  var wsScheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
  var fetcher = GraphiQL.createFetcher({
    url: '/graphql',
    subscriptionUrl: wsScheme + window.location.host + '/graphql/ws',
  });
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      defaultHeaders: '{"Authorization": "Bearer <token>"}',
    }),
  );
})();
